-- Why documents left each tier: counts per tier / domain / stage / reason.
SELECT
    tier,
    domain,
    stage,
    reason,
    count(*) AS documents,
    sum(n_chars) AS characters
FROM all_rejected
GROUP BY ALL
ORDER BY tier, domain, documents DESC;
