-- The L0 -> L4 retention funnel per domain: documents per tier, retention from L0
-- and from the tier below. (L3/L4 hold derived items, so their "retention" can exceed 1.)
WITH counts AS (
    SELECT domain, tier, count(*) AS documents, sum(n_chars) AS characters
    FROM all_records
    GROUP BY ALL
)
SELECT
    domain,
    tier,
    documents,
    characters,
    round(documents / first_value(documents) OVER w, 4) AS retention_from_l0,
    round(documents / lag(documents) OVER w, 4) AS retention_from_previous
FROM counts
WINDOW w AS (PARTITION BY domain ORDER BY tier)
ORDER BY domain, tier;
