-- The duplicate cluster of one L1 document, over the catalog views l1 and l1_rejected.
--
-- Parameter: $1 (DuckDB positional, used three times, bound once) = the doc_id of
-- any member: the kept document or one of its rejected duplicates, e.g.
--     con.execute(Path("sql/dup_cluster.sql").read_text(), [doc_id]).fetchall()
--
-- One row per member: the kept twin first (role 'kept'), then every document that
-- dedup rejected naming it (role 'duplicate'), by batch, with the rejecting stage,
-- the method (exact | minhash | semantic), the similarity to the kept twin
-- (estimated Jaccard for exact / minhash, cosine for semantic) and the twin's batch.
-- Membership comes from signals.dedup.dup_cluster, written when each member's batch
-- was deduplicated; a cluster is as those batches saw it.
WITH target AS (
    SELECT coalesce(
        (SELECT json_extract_string(signals, '$.dedup.dup_cluster')
           FROM l1_rejected
          WHERE doc_id = $1 AND starts_with(stage, 'dedup_')
          LIMIT 1),
        $1) AS cluster_id
),
members AS (
    SELECT k.doc_id, k.domain, k.batch, 'kept' AS role,
           NULL::VARCHAR AS stage, NULL::VARCHAR AS method, NULL::DOUBLE AS similarity,
           NULL::VARCHAR AS twin_batch, k.text
      FROM l1 AS k, target
     WHERE k.doc_id = target.cluster_id
    UNION ALL
    SELECT r.doc_id, r.domain, r.batch, 'duplicate' AS role,
           r.stage,
           json_extract_string(r.signals, '$.dedup.dup_method'),
           CAST(json_extract(r.signals, '$.dedup.dup_similarity') AS DOUBLE),
           json_extract_string(r.signals, '$.dedup.dup_twin_batch'),
           r.text
      FROM l1_rejected AS r, target
     WHERE starts_with(r.stage, 'dedup_')
       AND json_extract_string(r.signals, '$.dedup.dup_cluster') = target.cluster_id
)
SELECT doc_id, domain, batch, role, stage, method, similarity, twin_batch,
       (SELECT cluster_id FROM target) AS cluster_id,
       count(*) OVER () AS cluster_size,
       left(text, 120) AS text_preview
  FROM members
 ORDER BY role <> 'kept', batch, doc_id;
