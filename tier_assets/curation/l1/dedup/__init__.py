"""Per-domain deduplication across batches: exact -> MinHash-LSH -> semantic (FAISS).

Two halves, so that a caller can cache the expensive part:

* ``compute_signatures(docs, config)`` is a pure function of the documents: per
  document an exact hash of the normalized text, a MinHash signature and (when the
  semantic stage is on) an embedding. Store it as Parquet per batch.
* ``dedup(current_docs, current_sigs, earlier_sigs, config)`` decides one batch
  from the signatures of that batch and of every earlier batch of the domain.

Modules: ``config`` (``DedupConfig``), ``hashing`` (normalization, shingles,
MinHash), ``signatures`` (the Arrow table), ``clusters`` (band buckets, verified
edges, union-find, FAISS neighbours), ``step`` (``dedup`` and the ``Dedup`` step).
The Ray engine (``engines/ray_dedup.py``) runs signatures and band buckets on a
cluster and hands the same candidate pairs to the same ``dedup``.

Semantics (DESIGN.md, "Dedup across batches is deterministic"): documents are
ranked by ``(batch, order)``, batch keys compared as strings. Equivalence edges
(same normalized text; estimated Jaccard >= threshold; cosine >= threshold) join
documents into clusters (union-find); the earliest member of a cluster is kept and
every other member is rejected naming it as twin. A batch is decided on the graph
of all documents in batches up to and including it, so the verdict depends only on
the batch and earlier ones: materializing batches in any order gives the same
result, and a document that only has twins in later batches is kept. Every edge is
decided from its two signatures alone (integer MinHash agreement, float64 cosine),
so the graph of a prefix of batches is a subgraph of the graph of a longer prefix
and the twin a batch names is always a document kept by its own batch.

A rejected document's method is the first stage under which its cluster already
has an earlier member: exact, then MinHash (exact + MinHash edges), then semantic.
"""

from tier_assets.curation.l1.dedup.clusters import lsh_candidates
from tier_assets.curation.l1.dedup.config import DedupConfig
from tier_assets.curation.l1.dedup.hashing import normalize, words
from tier_assets.curation.l1.dedup.signatures import compute_signatures, matrix
from tier_assets.curation.l1.dedup.step import REASONS, STAGES, Dedup, dedup

# bench/l1_dedup.py reads these under their names from before the split
_words, _matrix, _lsh_candidates = words, matrix, lsh_candidates

__all__ = ["REASONS", "STAGES", "Dedup", "DedupConfig", "compute_signatures", "dedup", "normalize"]
