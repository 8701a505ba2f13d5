-- Duplicate cluster sizes in L1 per domain and method: a cluster is a kept
-- document plus every document rejected as its duplicate.
WITH dups AS (
    SELECT
        domain,
        json_extract_string(signals, '$.dedup.dup_method') AS method,
        json_extract_string(signals, '$.dedup.dup_twin') AS twin
    FROM l1_rejected
    WHERE stage LIKE 'dedup%'
),
clusters AS (
    SELECT domain, method, twin, count(*) + 1 AS cluster_size
    FROM dups
    GROUP BY ALL
)
SELECT domain, method, cluster_size, count(*) AS clusters, sum(cluster_size) AS documents
FROM clusters
GROUP BY ALL
ORDER BY domain, method, cluster_size;
