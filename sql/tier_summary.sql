-- Documents, characters and estimated tokens per tier / domain / batch.
-- Tokens are estimated from characters with a per-domain chars-per-token ratio
-- (English ~4.0, math ~3.5, code ~3.2, Chinese ~1.5 for common BPE tokenizers).
SELECT
    tier,
    domain,
    batch,
    count(*) AS documents,
    sum(n_chars) AS characters,
    CAST(round(sum(n_chars / CASE domain WHEN 'zh' THEN 1.5 WHEN 'code' THEN 3.2 WHEN 'math' THEN 3.5 ELSE 4.0 END))
         AS BIGINT) AS est_tokens
FROM all_records
GROUP BY ALL
ORDER BY tier, domain, batch;
