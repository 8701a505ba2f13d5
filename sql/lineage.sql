-- Full lineage of one record ($doc_id): every ancestor down to its L0 source
-- (direction 'down') and every record derived from it (direction 'up'), kept or
-- rejected, with provenance.
WITH RECURSIVE
records AS (
    SELECT doc_id, parent_ids, tier, domain, batch, source, source_file, record_index, byte_offset, url,
           warc_record_id, title, n_chars, CAST(NULL AS VARCHAR) AS stage, CAST(NULL AS VARCHAR) AS reason, true AS kept
    FROM all_records
    UNION ALL
    SELECT doc_id, parent_ids, tier, domain, batch, source, source_file, record_index, byte_offset, url,
           warc_record_id, title, n_chars, stage, reason, false AS kept
    FROM all_rejected
),
down(doc_id, depth) AS (
    SELECT $doc_id, 0
    UNION
    SELECT unnest(r.parent_ids), d.depth + 1
    FROM down d JOIN records r ON r.doc_id = d.doc_id
),
up(doc_id, depth) AS (
    SELECT $doc_id, 0
    UNION
    SELECT r.doc_id, u.depth + 1
    FROM up u JOIN records r ON list_contains(r.parent_ids, u.doc_id)
)
SELECT 'down' AS direction, d.depth, r.*
FROM down d JOIN records r USING (doc_id)
UNION ALL
SELECT 'up' AS direction, u.depth, r.*
FROM up u JOIN records r USING (doc_id)
WHERE u.depth > 0
ORDER BY direction, depth, tier;
