"""Dedup on Ray: signatures per block on actors, band buckets by a group-by, the rest in the driver.

Same semantics as local mode by construction: the driver calls the same ``dedup``
(prefix of earlier batches, exact groups, Jaccard verification, union-find, semantic
edges, the filter), and only two of its inputs come from the cluster, each equal to
what the local path computes:

1. **Signatures** (``compute_signatures`` is a pure function of each document): Ray
   Data ``map_batches`` over blocks of the batch's documents, as tasks for MinHash, on
   an actor pool that builds the embedder once per actor when semantic dedup is on
   (the embedder model stage).
2. **Candidate pairs** (``lsh_candidates``): a hash-partitioned shuffle in Ray tasks.
   A map task per block of the prefix's signatures emits one row per document and band
   (band, bucket key, rank), split into groups by a hash of (band, key); a reduce task
   per group gets its rows from every block, so a bucket never spans two reducers
   however many blocks its members came from, and emits the same star and chain pairs
   as ``bucket_pairs`` does locally. The driver takes the distinct pairs. (Ray Data's
   ``groupby().map_groups`` does the same but starts aggregator actors and ran 20-30 s
   longer on 200 documents here.)

Connected components stay in the driver (``UnionFind`` over verified edges), as does
FAISS for semantic dedup: ADR 0003 "Dedup on Ray" gives the memory per document and
per edge where that stops scaling.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data

from tier_assets.curation.engines.models import ModelsFactory
from tier_assets.curation.l1.dedup import Dedup, DedupConfig, compute_signatures, dedup
from tier_assets.curation.l1.dedup.clusters import band_keys, bucket_pairs, unique_pairs
from tier_assets.curation.pipeline import Doc, Models, Progress, StepResult

ROWS_PER_GROUP = 1 << 22  # band rows per reduce task (~75 MB of 18-byte rows): bounds a worker's memory
MAX_MAPS = 256  # map tasks of the band shuffle at most (objects in flight: maps x groups)
_SIGNATURE_COLUMNS = ("doc_id", "batch", "text")


def _block_signatures(block: pa.Table, config: DedupConfig, embedder: Any) -> pa.Table:
    """``compute_signatures`` of one block, ``order`` counted from the block's place in the batch (``_pos``)."""
    table = compute_signatures(block.select(_SIGNATURE_COLUMNS).to_pylist(), config, embedder)
    first = block["_pos"][0].as_py()
    order = pa.array(np.arange(first, first + table.num_rows, dtype=np.int64))
    return table.set_column(table.schema.get_field_index("order"), "order", order)


class SignatureWorker:
    """A Ray Data actor for semantic dedup: the embedder is built here once, then every block is signed."""

    def __init__(self, config: DedupConfig, factory: ModelsFactory) -> None:
        self.config = config
        self.embedder = factory.build({"embedder"}).embedder

    def __call__(self, block: pa.Table) -> pa.Table:
        return _block_signatures(block, self.config, self.embedder)


def signatures_on_ray(docs: list[Doc], config: DedupConfig, embedder: Any, block_size: int, workers: int,
                      remote_args: dict[str, Any]) -> pa.Table:
    """``compute_signatures(docs, config, embedder)``, computed block by block.

    MinHash alone runs as Ray Data tasks (no state worth an actor: a warm worker starts
    at once); with semantic dedup the blocks go to an actor pool that holds the embedder.
    """
    if not docs:
        return compute_signatures(docs, config, embedder)
    table = pa.table({"doc_id": pa.array([d["doc_id"] for d in docs], pa.string()),
                      "batch": pa.array([d["batch"] for d in docs], pa.string()),
                      "text": pa.array([d["text"] for d in docs], pa.string()),
                      "_pos": pa.array(np.arange(len(docs), dtype=np.int64))})
    blocks = [table.slice(lo, block_size) for lo in range(0, len(docs), block_size)]
    common: dict[str, Any] = {"batch_size": None, "batch_format": "pyarrow", "zero_copy_batch": True, "num_cpus": 1}
    ds = ray.data.from_arrow(blocks)
    if config.semantic:
        factory = ModelsFactory.from_models(Models(embedder=embedder), {"embedder"})
        ds = ds.map_batches(SignatureWorker, fn_constructor_kwargs={"config": config, "factory": factory},
                            compute=ray.data.ActorPoolStrategy(size=min(workers, len(blocks))), **common,
                            **remote_args)
    else:
        ds = ds.map_batches(_block_signatures, fn_kwargs={"config": config, "embedder": None},
                            max_retries=remote_args["max_task_retries"], **common)
    parts = list(ds.iter_batches(batch_size=None, batch_format="pyarrow"))
    return pa.concat_tables(parts).sort_by("order").replace_schema_metadata(parts[0].schema.metadata)


@ray.remote
def _band_parts(sigs: np.ndarray, first: int, bands: int, rows: int, seed: int,
                groups: int) -> tuple[dict[str, np.ndarray], ...]:
    """A map task: one row per document and band (band, bucket key, rank), split by the group its bucket goes to."""
    keys = np.concatenate([band_keys(sigs, band, rows, seed) for band in range(bands)])
    band = np.repeat(np.arange(bands, dtype=np.uint16), len(sigs))
    rank = np.tile(np.arange(first, first + len(sigs), dtype=np.int64), bands)
    group = (keys + band.astype(np.uint64)) % np.uint64(groups)  # a function of the bucket: it never splits
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(groups + 1, dtype=np.uint64))
    return tuple({"band": band[order[lo:hi]], "key": keys[order[lo:hi]], "rank": rank[order[lo:hi]]}
                 for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))


@ray.remote
def _group_pairs(*parts: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A reduce task: every bucket of one group, from all blocks, sorted by (band, key, rank) and paired."""
    band, key, rank = (np.concatenate([p[c] for p in parts]) for c in ("band", "key", "rank"))
    order = np.lexsort((rank, key, band))
    band, key, rank = band[order], key[order], rank[order]
    new_run = np.ones(len(order), bool)
    new_run[1:] = (band[1:] != band[:-1]) | (key[1:] != key[:-1])
    return bucket_pairs(rank, new_run)


def candidates_on_ray(sigs: np.ndarray, bands: int, rows: int, seed: int, *, block_size: int, workers: int,
                      retries: int) -> tuple[np.ndarray, np.ndarray]:
    """``lsh_candidates(sigs, bands, rows, seed)`` with the band buckets formed by a hash-partitioned shuffle.

    Map tasks over blocks of ``block_size`` signatures (larger when there would be more
    than ``MAX_MAPS`` of them: the shuffle makes maps x groups objects), ``groups``
    reduce tasks (at least 2, one per ``ROWS_PER_GROUP`` band rows); the driver keeps
    the distinct pairs.
    """
    n = len(sigs)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    groups = max(2, workers, -(-n * bands // ROWS_PER_GROUP))
    size = max(block_size, -(-n // MAX_MAPS))
    band_parts = _band_parts.options(num_returns=groups, max_retries=retries)
    maps = [band_parts.remote(sigs[lo:lo + size], lo, bands, rows, seed, groups) for lo in range(0, n, size)]
    reduces = [_group_pairs.options(max_retries=retries).remote(*(m[g] for m in maps)) for g in range(groups)]
    pairs = ray.get(reduces)
    return unique_pairs(np.concatenate([lo for lo, _ in pairs]), np.concatenate([hi for _, hi in pairs]), n)


def run_dedup(step: Dedup, docs: list[Doc], block_size: int, workers: int | None, remote_args: dict[str, Any],
              progress: Progress | None = None) -> StepResult:
    """``step.run(docs)`` with its signatures and band buckets on the cluster the driver is connected to.

    ``remote_args`` are the engine's capped restarts and retries for actors
    (``max_restarts``, ``max_task_retries``); tasks get ``max_task_retries`` retries.
    """
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    start = time.perf_counter()
    step.signatures = signatures_on_ray(docs, step.config, step.embedder, block_size, workers, remote_args)
    if progress:
        progress(f"dedup: signatures of {len(docs)} documents on Ray in {time.perf_counter() - start:.1f}s")

    def candidates(sigs: np.ndarray, bands: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        began = time.perf_counter()
        lo, hi = candidates_on_ray(sigs, bands, rows, seed, block_size=block_size, workers=workers,
                                   retries=remote_args["max_task_retries"])
        if progress:
            progress(f"dedup: {len(lo)} candidate pairs from {len(sigs) * bands} band rows on Ray "
                     f"in {time.perf_counter() - began:.1f}s")
        return lo, hi

    return dedup(docs, step.signatures, step.earlier_sigs, step.config, candidates)
