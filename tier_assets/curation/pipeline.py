"""The stage contract every tier is written in, and the local runner that composes it.

A tier is a list of stages of two kinds (after NeMo Curator's ``ProcessingStage``
and DataTrove's pipeline steps):

* ``RecordStage``: pure over a batch of records. The same documents give the same
  result whatever the batch size, so an executor may cut a partition into batches
  anywhere (the local runner here, Ray's ``map_batches`` on a cluster).
* ``PartitionStep``: needs the whole partition, or the domain's history, at once
  (dedup against earlier batches, top-fraction selection, ranking under a token
  budget, merging L4 items).

Both declare the ``Resources`` a worker needs (CPUs, GPUs, memory, which models)
and get their models in ``setup(models)``, once per worker, before any batch; the
library never loads a model behind a stage's back. A stage works on documents
(``dict`` rows of the record schema, ``signals``/``models`` as dicts); every
rejected document carries ``stage``, ``reason`` and ``detail``, so kept + rejected
accounts for every input. ``process_batch`` is the same work with Arrow tables at
the boundary, which is what a cluster executor moves between workers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tier_assets.curation.schema import JSON_COLUMNS, dumps

Doc = dict[str, Any]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Resources:
    """What one worker running the stage needs; ``models`` names what ``setup`` must be given."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float = 1.0
    models: tuple[str, ...] = ()


@dataclass
class Models:
    """The models a worker holds, built once by the caller (Dagster resources, the CLI, a Ray actor)."""

    embedder: Any = None
    llm: Any = None
    classifier: Any = None

    def require(self, name: str, stage: str) -> Any:
        model = getattr(self, name)
        if model is None:
            raise ValueError(f"stage {stage!r} needs the {name} model, and none was given to setup()")
        return model


@dataclass
class StepResult:
    kept: list[Doc]
    rejected: list[Doc]


@dataclass
class StageStats:
    """Counts and time of one stage over a run (summed over its batches)."""

    name: str
    docs_in: int = 0
    kept: int = 0
    rejected: int = 0
    seconds: float = 0.0

    def add(self, docs_in: int, kept: int, rejected: int, seconds: float) -> None:
        self.docs_in += docs_in
        self.kept += kept
        self.rejected += rejected
        self.seconds += seconds

    @property
    def docs_per_second(self) -> float:
        return self.docs_in / max(self.seconds, 1e-9)


@dataclass
class StageResult:
    """``process_batch``'s answer: kept and rejected records as Arrow tables, and the stage's counts."""

    kept: pa.Table
    rejected: pa.Table
    stats: StageStats


def reject(doc: Doc, stage: str, reason: str, detail: str = "") -> Doc:
    """Mark ``doc`` as rejected by ``stage`` (returns the same dict)."""
    doc["stage"] = stage
    doc["reason"] = reason
    doc["detail"] = detail
    return doc


def add_signals(doc: Doc, stage: str, values: dict[str, Any]) -> None:
    """Record per-stage signals on ``doc`` under ``signals[stage]``."""
    signals = doc.get("signals")
    if not isinstance(signals, dict):
        signals = {}
        doc["signals"] = signals
    signals.setdefault(stage, {}).update(values)


def docs_to_table(docs: Sequence[Doc]) -> pa.Table:
    """Documents as an Arrow table, the JSON columns serialized (so any nesting crosses a process boundary)."""
    return pa.Table.from_pylist([{k: dumps(v) if k in JSON_COLUMNS else v for k, v in d.items()} for d in docs])


def table_to_docs(table: pa.Table) -> list[Doc]:
    """The working documents of an Arrow table (JSON columns back to dicts; None stays None)."""
    return [{k: json.loads(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()}
            for row in table.to_pylist()]


class Stage:
    """What both kinds share: a name, declared resources, and model set-up / tear-down."""

    name: str = "stage"
    resources: Resources = Resources()

    def setup(self, models: Models) -> None:
        """Take the models this stage declared; called once per worker before any batch."""

    def teardown(self) -> None:
        """Release what ``setup`` took; called once per worker after the last batch."""


class RecordStage(Stage):
    """Pure over a batch: subclasses implement ``process`` on documents."""

    def process(self, docs: list[Doc]) -> StepResult:
        raise NotImplementedError

    def process_batch(self, batch: pa.Table) -> StageResult:
        """``process`` with Arrow tables at the boundary (what a cluster executor calls)."""
        docs = table_to_docs(batch)
        start = time.perf_counter()
        result = self.process(docs)
        stats = StageStats(self.name)
        stats.add(len(docs), len(result.kept), len(result.rejected), time.perf_counter() - start)
        return StageResult(docs_to_table(result.kept), docs_to_table(result.rejected), stats)


class PartitionStep(Stage):
    """Needs every document of the partition at once; subclasses implement ``run``."""

    def run(self, docs: list[Doc]) -> StepResult:
        raise NotImplementedError


class Mapper(RecordStage):
    """Edits text and keeps the document; records its name in ``signals.mappers`` when it changed."""

    def map_text(self, text: str, doc: Doc) -> str:
        raise NotImplementedError

    def process(self, docs: list[Doc]) -> StepResult:
        for doc in docs:
            new = self.map_text(doc["text"], doc)
            if new != doc["text"]:
                doc["text"] = new
                signals = doc.setdefault("signals", {})
                signals.setdefault("mappers", []).append(self.name)
        return StepResult(docs, [])


class Filter(RecordStage):
    """Keeps or rejects each document; ``check`` returns None to keep or (reason, detail) to reject."""

    def check(self, doc: Doc) -> tuple[str, str] | None:
        raise NotImplementedError

    def process(self, docs: list[Doc]) -> StepResult:
        kept, rejected = [], []
        for doc in docs:
            verdict = self.check(doc)
            if verdict is None:
                kept.append(doc)
            else:
                rejected.append(reject(doc, self.name, *verdict))
        return StepResult(kept, rejected)


def _segments(stages: Sequence[Stage]) -> Iterator[list[Stage]]:
    """Runs of consecutive record stages, and each partition step on its own."""
    run: list[Stage] = []
    for stage in stages:
        if isinstance(stage, PartitionStep):
            if run:
                yield run
                run = []
            yield [stage]
        else:
            run.append(stage)
    if run:
        yield run


@dataclass
class Pipeline:
    """The local runner: record stages over batches of ``batch_size`` documents, partition steps on all of them.

    ``run`` sets every stage up once with ``models``, streams each batch through
    the consecutive record stages, hands the survivors to a partition step whole,
    and tears every stage down at the end (also on failure). ``stats`` holds one
    ``StageStats`` per stage, summed over batches. ``batch_size=None`` = the whole
    partition as one batch.
    """

    stages: Sequence[Stage]
    batch_size: int | None = None
    stats: dict[str, StageStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique within a pipeline: {names}")

    def run(self, docs: Iterable[Doc], progress: Progress | None = None, models: Models | None = None) -> StepResult:
        """Run every stage; ``progress`` gets one line per stage (counts, docs/s) and per batch (count, ETA)."""
        self.stats = {s.name: StageStats(s.name) for s in self.stages}
        kept = list(docs)
        rejected: list[Doc] = []
        ready: list[Stage] = []
        try:
            for stage in self.stages:
                stage.setup(models or Models())
                ready.append(stage)
            for segment in _segments(self.stages):
                kept = self._run_segment(segment, kept, rejected, progress)
        finally:
            for stage in reversed(ready):
                stage.teardown()
        return StepResult(kept, rejected)

    def _run_segment(self, segment: list[Stage], docs: list[Doc], rejected: list[Doc],
                     progress: Progress | None) -> list[Doc]:
        if isinstance(segment[0], PartitionStep):
            step = segment[0]
            start = time.perf_counter()
            result = step.run(docs)
            self._count(step, len(docs), result, time.perf_counter() - start, progress)
            rejected.extend(result.rejected)
            return result.kept
        size = self.batch_size or max(len(docs), 1)
        batches = [docs[i:i + size] for i in range(0, len(docs), size)] or [[]]
        kept_all: list[Doc] = []
        started = time.perf_counter()
        for n, batch in enumerate(batches, 1):
            for stage in segment:
                start = time.perf_counter()
                result = stage.process(batch)  # type: ignore[attr-defined]
                self.stats[stage.name].add(len(batch), len(result.kept), len(result.rejected),
                                           time.perf_counter() - start)
                rejected.extend(result.rejected)
                batch = result.kept
            kept_all.extend(batch)
            if progress and len(batches) > 1:
                elapsed = time.perf_counter() - started
                done = min(n * size, len(docs))
                progress(f"batch {n}/{len(batches)}: {done}/{len(docs)} documents through {len(segment)} stages "
                         f"({done / max(elapsed, 1e-9):,.0f} docs/s, ETA {(len(docs) - done) * elapsed / done:.0f}s)")
        if progress:
            for stage in segment:
                s = self.stats[stage.name]
                progress(f"{s.name}: {s.docs_in} in, {s.kept} kept, {s.rejected} rejected "
                         f"({s.docs_per_second:,.0f} docs/s)")
        return kept_all

    def _count(self, step: Stage, n_in: int, result: StepResult, seconds: float, progress: Progress | None) -> None:
        stats = self.stats[step.name]
        stats.add(n_in, len(result.kept), len(result.rejected), seconds)
        if progress:
            progress(f"{step.name}: {n_in} in, {stats.kept} kept, {stats.rejected} rejected "
                     f"({stats.docs_per_second:,.0f} docs/s)")
