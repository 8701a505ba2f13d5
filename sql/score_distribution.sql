-- L2 quality score distribution per domain (selected and unselected), in 0.5-wide buckets.
WITH scored AS (
    SELECT domain, score, true AS selected FROM l2 WHERE score IS NOT NULL
    UNION ALL
    SELECT domain, score, false AS selected FROM l2_rejected WHERE score IS NOT NULL
)
SELECT
    domain,
    floor(score * 2) / 2 AS bucket,
    count(*) FILTER (WHERE selected) AS selected,
    count(*) FILTER (WHERE NOT selected) AS unselected
FROM scored
GROUP BY ALL
ORDER BY domain, bucket;
