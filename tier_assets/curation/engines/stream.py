"""How a partition travels through a distributed executor: one Arrow block per batch, rejects riding along.

A record stage has two outputs (kept, rejected) and Ray Data's ``map_batches`` has one,
so a block carries both. Kept documents are Arrow columns (the next stage reads them
through ``process_batch``); a rejected document is terminal, so it rides as one JSON
string in ``_rejected``, with the index of the stage that rejected it in ``_step``, and
is parsed again only by the driver. Every row keeps its input position ``_pos``, so the
driver puts the documents back in the local runner's order (kept by position, rejected
by batch, stage, position) whatever order the workers finished in. ``_stats`` (first row
only) carries the per-stage counts and seconds, and each worker's peak RSS, so the
driver reports the same ``StageStats`` as the local runner.

Consecutive record stages that run on the same workers form one ``Chain``: one Arrow
round trip per batch instead of one per stage (the round trip costs ~0.2 ms a document,
as much as a cheap stage; ADR 0002).
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tier_assets.curation.pipeline import (
    Doc,
    Models,
    RecordStage,
    Resources,
    StageStats,
    StepResult,
    docs_to_table,
)
from tier_assets.curation.schema import JSON_COLUMNS

POS, REJECTED, STEP, STATS = "_pos", "_rejected", "_step", "_stats"
CONTROL = (REJECTED, STEP, STATS)


class Chain(RecordStage):
    """Consecutive record stages run as one: resources are the most any of them asks for."""

    def __init__(self, stages: Sequence[RecordStage]):
        self.stages = list(stages)
        self.name = "+".join(s.name for s in self.stages)
        rs = [s.resources for s in self.stages]
        self.resources = Resources(cpus=max(r.cpus for r in rs), gpus=max(r.gpus for r in rs),
                                   memory_gb=max(r.memory_gb for r in rs),
                                   models=tuple(dict.fromkeys(m for r in rs for m in r.models)))
        self.batch_stats: list[StageStats] = []
        self.running = ""  # the stage inside ``process`` now: what an out-of-memory failure names

    def setup(self, models: Models) -> None:
        for stage in self.stages:
            stage.setup(models)

    def teardown(self) -> None:
        for stage in reversed(self.stages):
            stage.teardown()

    def process(self, docs: list[Doc]) -> StepResult:
        self.batch_stats = []
        rejected: list[Doc] = []
        for stage in self.stages:
            self.running = stage.name
            start = time.perf_counter()
            result = stage.process(docs)
            stats = StageStats(stage.name)
            stats.add(len(docs), len(result.kept), len(result.rejected), time.perf_counter() - start)
            self.batch_stats.append(stats)
            rejected.extend(result.rejected)
            docs = result.kept
        for part, name in ((docs, "kept"), (rejected, "rejected")):
            keys = {frozenset(d) for d in part}
            if len(keys) > 1:  # docs_to_table takes its columns from the first document: others' keys would be lost
                raise ValueError(f"{name} documents of {self.name!r} differ in their keys: "
                                 f"{sorted(set().union(*keys) - set.intersection(*map(set, keys)))}")
        return StepResult(docs, rejected)


def input_blocks(docs: Sequence[Doc], size: int, positions: Sequence[int] | None = None) -> list[pa.Table]:
    """The documents (those at ``positions``; None: all) cut into blocks of ``size``, each tagged with its position."""
    at = range(len(docs)) if positions is None else positions
    return [docs_to_table([{**docs[pos], POS: pos} for pos in at[start:start + size]])
            for start in range(0, len(at), size)]


def run_chain(chain: Chain, first: int, block: pa.Table) -> pa.Table:
    """``chain.process_batch`` on the block's live rows (``first``: the index of its first stage in the segment)."""
    live_mask = pc.is_null(block[REJECTED]) if REJECTED in block.column_names else None
    live = block if live_mask is None else block.filter(live_mask)
    live = live.drop_columns([c for c in CONTROL if c in live.column_names])
    passed = [] if live_mask is None else [block.filter(pc.invert(live_mask)).select([POS, REJECTED, STEP])]
    result = chain.process_batch(live)
    kept = result.kept
    if result.kept.num_rows + result.rejected.num_rows != live.num_rows or (
            kept.num_rows and (POS not in kept.column_names or kept[POS].null_count)):
        raise ValueError(f"record stages {chain.name!r} must keep or reject each input document (and only those): "
                         f"{live.num_rows} in, {kept.num_rows} kept, {result.rejected.num_rows} rejected")
    rows = result.rejected.to_pylist()
    steps = [first + i for i, s in enumerate(chain.batch_stats) for _ in range(s.rejected)]  # Chain emits in stage order
    rejected = pa.table({POS: pa.array([r.pop(POS) for r in rows], pa.int64()),
                         REJECTED: pa.array([json.dumps(r) for r in rows], pa.string()),
                         STEP: pa.array(steps, pa.int64())})
    out = pa.concat_tables([kept, *passed, rejected], promote_options="permissive")
    carried = [json.loads(s) for s in block[STATS].to_pylist() if s] if STATS in block.column_names else []
    own = {"stages": {s.name: [s.docs_in, s.kept, s.rejected, s.seconds] for s in chain.batch_stats},
           "rss_mb": {str(os.getpid()): resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}
    column = [json.dumps(_merge([*carried, own]))] + [None] * (out.num_rows - 1)
    return out.append_column(STATS, pa.array(column, pa.string()))


def _merge(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"stages": {}, "rss_mb": {}}
    for part in parts:
        for name, counts in part["stages"].items():
            prev = merged["stages"].get(name, [0, 0, 0, 0.0])
            merged["stages"][name] = [a + b for a, b in zip(prev, counts, strict=True)]
        for pid, mb in part["rss_mb"].items():
            merged["rss_mb"][pid] = max(mb, merged["rss_mb"].get(pid, 0.0))
    return merged


def _doc(row: dict[str, Any]) -> Doc:
    return {k: json.loads(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()}


@dataclass
class Collected:
    """What the driver gathered from the output blocks, in the local runner's order."""

    kept: list[tuple[int, Doc]] = field(default_factory=list)
    rejected: list[tuple[int, Doc]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=lambda: _merge([]))


def collect(blocks: Iterable[pa.Table], batch_size: int | None) -> Collected:
    """Kept documents by position; rejected ones by (batch, stage, position), as the local runner emits them.

    ``batch_size`` is the tier's setting (None: the local runner's one batch), not how the blocks were cut.
    """
    kept, rejected, stats = [], [], []
    for block in blocks:
        stats.extend(json.loads(s) for s in block[STATS].to_pylist() if s)
        mask = pc.is_null(block[REJECTED]) if REJECTED in block.column_names else None
        live = block if mask is None else block.filter(mask)
        for row in live.drop_columns([c for c in CONTROL if c in live.column_names]).to_pylist():
            kept.append((row.pop(POS), _doc(row)))
        if mask is not None:
            for row in block.filter(pc.invert(mask)).select([POS, STEP, REJECTED]).to_pylist():
                batch = row[POS] // batch_size if batch_size else 0
                rejected.append(((batch, row[STEP], row[POS]), row[POS], _doc(json.loads(row[REJECTED]))))
    kept.sort(key=lambda item: item[0])
    rejected.sort(key=lambda item: item[0])
    return Collected(kept, [(pos, doc) for _, pos, doc in rejected], _merge(stats))
