"""Deciding a batch: the prefix of the domain's signatures, clusters, the earliest member kept.

Semantics (DESIGN.md, "Dedup across batches is deterministic"): see the package docstring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tier_assets.curation.l1.dedup.clusters import UnionFind, cosine, jaccard, lsh_candidates, semantic_edges
from tier_assets.curation.l1.dedup.config import DedupConfig
from tier_assets.curation.l1.dedup.signatures import EMBEDDER_META, MINHASH_META, compute_signatures, matrix
from tier_assets.curation.pipeline import (
    Doc,
    Models,
    PartitionStep,
    Resources,
    StepResult,
    add_signals,
    reject,
)

STAGES = {"exact": "dedup_exact", "minhash": "dedup_minhash", "semantic": "dedup_semantic"}
REASONS = {"exact": "exact_duplicate", "minhash": "near_duplicate", "semantic": "semantic_duplicate"}
# (sigs, bands, rows, seed) -> candidate pairs (lo, hi), distinct and sorted
Candidates = Callable[[np.ndarray, int, int, int], tuple[np.ndarray, np.ndarray]]


def _prefix_table(current_sigs: pa.Table, earlier_sigs: Sequence[pa.Table], batch: str,
                  config: DedupConfig) -> pa.Table:
    """Signatures of earlier batches and the current one, sorted by rank (batch, order)."""
    schema = pa.schema([("doc_id", pa.string()), ("batch", pa.string()), ("order", pa.int64()),
                        ("exact_hash", pa.string()), ("minhash", pa.list_(pa.uint32()))]
                       + ([("embedding", pa.list_(pa.float32()))] if config.semantic else []))
    cols = schema.names
    embedders = set()
    parts = []
    for i, table in enumerate([current_sigs, *earlier_sigs]):
        what = "current_sigs" if i == 0 else f"earlier_sigs[{i - 1}]"
        meta = table.schema.metadata or {}
        if meta.get(MINHASH_META, b"").decode() != config.minhash_fingerprint:
            raise ValueError(f"{what} were computed with {meta.get(MINHASH_META, b'no fingerprint').decode()!r}, "
                             f"config needs {config.minhash_fingerprint!r}: recompute them")
        missing = [c for c in cols if c not in table.column_names]
        if missing:
            raise ValueError(f"{what} lack columns {missing} (semantic signatures need an embedder)")
        if config.semantic:
            embedders.add(meta.get(EMBEDDER_META, b"").decode())
        if i > 0:
            table = table.filter(pc.less(table["batch"], batch))
        parts.append(table.select(cols).cast(schema))
    if len(embedders) > 1:
        raise ValueError(f"signatures mix embeddings from {sorted(embedders)}: recompute them with one embedder")
    return pa.concat_tables(parts).sort_by([("batch", "ascending"), ("order", "ascending")])


def dedup(current_docs: Sequence[Doc], current_sigs: pa.Table, earlier_sigs: Sequence[pa.Table],
          config: DedupConfig, candidates: Candidates = lsh_candidates) -> StepResult:
    """Decide one batch of one domain: keep cluster roots, reject the rest naming their twin.

    ``current_sigs`` are ``compute_signatures(current_docs, config)``; ``earlier_sigs``
    are signature tables of the same domain (rows of batches not earlier than the
    current one are ignored, so passing every cached batch is fine). Rejected
    documents get stage ``dedup_exact|dedup_minhash|dedup_semantic``, reason
    ``exact_duplicate|near_duplicate|semantic_duplicate``, detail
    ``twin=<doc_id> batch=<batch> jaccard=<j>`` (``cosine=<c>`` for semantic), and
    ``signals.dedup = {dup_twin, dup_twin_batch, dup_method, dup_cluster, dup_similarity}``.
    ``candidates`` finds the MinHash candidate pairs (``lsh_candidates`` here; the Ray engine
    passes its distributed band buckets, which return the same pairs).
    """
    if not current_docs:
        return StepResult([], [])
    batches = {d["batch"] for d in current_docs}
    if len(batches) != 1:
        raise ValueError(f"current_docs must come from one batch, got {sorted(batches)}")
    batch = batches.pop()
    if set(current_sigs["batch"].to_pylist()) != {batch}:
        raise ValueError(f"current_sigs must all be of batch {batch!r}")
    table = _prefix_table(current_sigs, earlier_sigs, batch, config)
    doc_ids = table["doc_id"].to_pylist()
    batch_col = table["batch"].to_pylist()
    rank_of = {doc_id: r for r, (doc_id, b) in enumerate(zip(doc_ids, batch_col, strict=True)) if b == batch}
    if len(rank_of) != len(current_docs) or any(d["doc_id"] not in rank_of for d in current_docs):
        raise ValueError("current_sigs do not match current_docs (one row per doc_id)")
    current = np.fromiter((rank_of[d["doc_id"]] for d in current_docs), np.int64, count=len(current_docs))

    n = table.num_rows
    sigs = matrix(table["minhash"], config.num_perm, np.uint32, "minhash")
    uf = UnionFind(n)
    method = np.full(len(current), "", dtype=object)

    if config.exact:
        group = pc.dictionary_encode(table["exact_hash"].combine_chunks()).indices.to_numpy()
        _, first = np.unique(group, return_index=True)
        root = first[group]
        linked = np.flatnonzero(root != np.arange(n))
        uf.union_edges(root[linked], linked)
        method[root[current] < current] = "exact"
    if config.minhash:
        lo, hi = candidates(sigs, config.bands, config.rows, config.seed)
        ok = jaccard(sigs, lo, hi) >= config.jaccard_threshold
        uf.union_edges(lo[ok], hi[ok])
        method[(method == "") & (uf.roots(current) < current)] = "minhash"
    emb = None
    if config.semantic:
        emb = _window_matrix(table, config.embed_windows)
        labels = uf.roots(np.arange(n))
        semantic_edges(emb, labels, current, config, uf)
        method[(method == "") & (uf.roots(current) < current)] = "semantic"

    twins = uf.roots(current)
    similarity = jaccard(sigs, current, twins)
    if emb is not None:
        semantic = method == "semantic"
        similarity[semantic] = cosine(emb, current[semantic], twins[semantic])
    kept: list[Doc] = []
    rejected: list[Doc] = []
    for doc, rank, twin, how, sim in zip(current_docs, current.tolist(), twins.tolist(), method, similarity.tolist(),
                                         strict=True):
        if twin == rank:
            kept.append(doc)
            continue
        add_signals(doc, "dedup", {
            "dup_twin": doc_ids[twin], "dup_twin_batch": batch_col[twin], "dup_method": how,
            "dup_cluster": doc_ids[twin], "dup_similarity": round(sim, 4),
        })
        measure = "cosine" if how == "semantic" else "jaccard"
        detail = f"twin={doc_ids[twin]} batch={batch_col[twin]} {measure}={sim:.2f}"
        rejected.append(reject(doc, STAGES[how], REASONS[how], detail))
    return StepResult(kept, rejected)


def _window_matrix(table: pa.Table, windows: int) -> np.ndarray:
    """The embedding column as an (n, windows, dim) array of window vectors."""
    column = table["embedding"].combine_chunks()
    width = int(pc.list_value_length(column)[0].as_py()) if len(column) else 0
    if width % windows:
        raise ValueError(f"embedding: {width} values do not split into {windows} windows (signatures from "
                         "another config?)")
    return matrix(column, width, np.float32, "embedding").reshape(len(column), windows, width // windows)


class Dedup(PartitionStep):
    """Signatures of the whole batch, then ``dedup`` against the domain's earlier batches.

    A partition step: a document's fate depends on every other document of the
    batch and on the earlier batches' signatures (``earlier_sigs``). The embedder
    comes from ``setup`` when semantic dedup is on. After ``run``, ``signatures``
    holds the batch's table for the caller to cache.
    """

    name = "dedup"

    def __init__(self, config: DedupConfig, earlier_sigs: Sequence[pa.Table] = ()):
        self.config = config
        self.earlier_sigs = earlier_sigs
        self.resources = Resources(models=("embedder",) if config.semantic else ())
        self.embedder: Any = None
        self.signatures: pa.Table | None = None

    def setup(self, models: Models) -> None:
        self.embedder = models.require("embedder", self.name) if self.config.semantic else None

    def run(self, docs: list[Doc]) -> StepResult:
        self.signatures = compute_signatures(docs, self.config, self.embedder)
        return dedup(docs, self.signatures, self.earlier_sigs, self.config)
