"""The Ray engine: record stages on a Ray cluster with Ray Data, partition steps in the driver.

The process that runs the tier (a Dagster run, the CLI) is the Ray driver (ADR 0003).
Consecutive record stages become one ``map_batches`` over Arrow blocks of
``batch_size`` documents (``Chain.process_batch`` on each block); a stage that declares
models gets its own operator, so it can ask for GPUs and hold its models apart. Every
operator is an actor pool: ``setup`` runs once per actor, with models built in the actor
by a picklable ``ModelsFactory``, and the stages' own state (the language-id model, the
decontamination index: ~90 MB pickled for L1) is unpickled once per actor, not once per
batch as tasks would. Partition steps (dedup, selection) need every document and run
here on the collected records; dedup sends its signatures and band buckets back out to the
cluster (``ray_dedup.py``) and decides here. Output is put back in input order, and written into the
caller's documents as the local runner does, so both engines return the same thing.
"""

from __future__ import annotations

import logging
import re
import socket
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import ray
import ray.data
import ray.exceptions

from tier_assets.curation.engines.models import ModelsFactory
from tier_assets.curation.engines.ray_dedup import run_dedup
from tier_assets.curation.engines.stream import POS, Chain, collect, input_blocks, run_chain
from tier_assets.curation.l1.dedup import Dedup
from tier_assets.curation.pipeline import (
    Doc,
    Models,
    PartitionStep,
    Pipeline,
    Progress,
    RecordStage,
    Stage,
    StageStats,
    StepResult,
    _segments,
)

DEFAULT_BATCH = 1000  # documents per block when the tier's records_per_batch is None (the whole partition)
# A dead actor is restarted and its batch retried a few times; Ray Data's default is forever, which turns a
# stage that crashes its worker on some document into a hung run. Ray 2.60 takes these only as ray_remote_args
# (deprecated, removed in 2.64: hence the pin in pyproject's cluster extra).
_RETRIES = {"max_restarts": 3, "max_task_retries": 3}
_HOST_PORT = re.compile(r"(?:ray://)?\[?(?P<host>[^\]/\s]+?)\]?:(?P<port>\d+)/?")


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once, naming the address, when nothing listens there (``ray.init`` retries for over 5 minutes)."""
    match = _HOST_PORT.fullmatch(address.strip())
    if match is None:  # "auto", "local": ray.init resolves these itself
        return
    try:
        socket.create_connection((match["host"], int(match["port"])), timeout=timeout_s).close()
    except OSError as err:
        raise ConnectionError(f"no Ray cluster at RAY_ADDRESS={address}: {err.strerror or err}") from None


@dataclass
class RayEngine:
    """Connects to ``address`` (None: a Ray started in this process) and makes ``RayPipeline`` runners."""

    address: str | None = None
    workers: int | None = None  # actors per operator; None: as many as the cluster's resources fit
    name: str = "ray"

    def pipeline(self, stages: Sequence[Stage], batch_size: int | None = None) -> RayPipeline:
        return RayPipeline(stages, batch_size, self)

    def connect(self) -> str:
        """Join the cluster (once per process); returns its address for messages."""
        if self.address:
            check_reachable(self.address)
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, logging_level=logging.WARNING)
                else:  # "local": a Ray of this process's own, even when a `ray start` head runs on this machine
                    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
            except ConnectionError as err:
                if _says(err, "InvalidAuthToken"):  # `ray start` turns token authentication on
                    raise ConnectionError(f"the Ray cluster at RAY_ADDRESS={self.address} wants its token: set "
                                          "RAY_AUTH_MODE=token, with the token in ~/.ray/auth_token or "
                                          "RAY_AUTH_TOKEN") from None
                raise ConnectionError(f"cannot join the Ray cluster at RAY_ADDRESS={self.address}: {err}") from None
        ray.data.DataContext.get_current().enable_progress_bars = False  # the runner reports progress itself
        return self.address or ray.get_runtime_context().gcs_address


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and everything that caused it: ``__cause__``, ``__context__`` and a ``RayTaskError``'s ``cause``."""
    seen: list[BaseException] = []
    todo: list[object] = [err]
    while todo:
        e = todo.pop()
        if isinstance(e, BaseException) and not any(e is s for s in seen):
            seen.append(e)
            todo += [e.__cause__, e.__context__, getattr(e, "cause", None)]
    return seen


def _says(err: BaseException, text: str) -> bool:
    """Whether ``err`` or what caused it mentions ``text`` (ray.init keeps a GCS auth failure only as text)."""
    return any(text in str(cause) for cause in _causes(err))


def operators(segment: Sequence[RecordStage]) -> list[Chain]:
    """Record stages grouped into operators: each model stage alone, runs of the others together."""
    ops: list[list[RecordStage]] = []
    for stage in segment:
        if stage.resources.models or not ops or ops[-1][-1].resources.models:
            ops.append([stage])
        else:
            ops[-1].append(stage)
    return [Chain(op) for op in ops]


def workers_that_fit(ops: Sequence[Chain], cluster: dict[str, float], address: str, workers: int | None) -> int:
    """Actors per operator so that every operator of a segment runs at once; a request that can never be met fails."""
    have = {"CPU": cluster.get("CPU", 0.0), "GPU": cluster.get("GPU", 0.0),
            "GB of memory": cluster.get("memory", 0.0) / 2**30}
    for op in ops:
        r = op.resources
        for what, asked in (("CPU", r.cpus), ("GPU", r.gpus), ("GB of memory", r.memory_gb)):
            if asked > have[what]:
                raise RuntimeError(f"stage {op.name!r} asks for {asked:g} {what} per worker, but the Ray cluster at "
                                   f"{address} has {have[what]:g} in all; it would wait forever. Give the cluster "
                                   f"{what} or lower the stage's resources.")
    need = {"CPU": sum(op.resources.cpus for op in ops), "GPU": sum(op.resources.gpus for op in ops),
            "GB of memory": sum(op.resources.memory_gb for op in ops)}
    fit = int(min((have[k] // v for k, v in need.items() if v > 0), default=workers or 1))
    if fit < 1 or (workers is not None and workers > fit):
        raise RuntimeError(f"stages {[op.name for op in ops]} need {workers or 1} worker(s) each at once "
                           f"({need} per set), but the Ray cluster at {address} has {have}")
    return workers or fit


class ChainWorker:
    """A Ray Data actor: sets its stages up once, with models built here, and runs them on each block."""

    def __init__(self, chain: Chain, first: int, factory: ModelsFactory) -> None:
        names = set(chain.resources.models)
        chain.setup(factory.build(names) if names else Models())
        self.chain, self.first = chain, first

    def __call__(self, block: pa.Table) -> pa.Table:
        try:
            return run_chain(self.chain, self.first, block)
        except MemoryError:  # named here, where the stage is known; the driver halves the block
            raise BlockOutOfMemory(self.chain.running, block.num_rows) from None

    def __del__(self) -> None:  # Ray Data drops its actors' UDFs when the dataset is done
        if hasattr(self, "chain"):
            self.chain.teardown()


@dataclass
class RayPipeline:
    """``Pipeline``'s interface on Ray: same stages, same result, same ``stats`` (seconds summed over workers)."""

    stages: Sequence[Stage]
    batch_size: int | None
    engine: RayEngine
    stats: dict[str, StageStats] = field(default_factory=dict)
    worker_peak_rss_mb: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Pipeline(self.stages, self.batch_size)  # the local runner's checks: batch size, unique names

    def run(self, docs: Iterable[Doc], progress: Progress | None = None, models: Models | None = None) -> StepResult:
        models = models or Models()
        self.stats = {s.name: StageStats(s.name) for s in self.stages}
        segments = list(_segments(self.stages))
        plans: list[tuple[list[Chain], int] | None] = [None] * len(segments)
        remote = [s for seg in segments if not isinstance(seg[0], PartitionStep) for s in seg]
        factory = ModelsFactory()
        if remote:
            for stage in remote:  # fail here, not in an actor's retried __init__
                for name in stage.resources.models:
                    models.require(name, stage.name)
            address = self.engine.connect()
            factory = ModelsFactory.from_models(models, {m for s in remote for m in s.resources.models})
            cluster = ray.cluster_resources()
            for i, seg in enumerate(segments):
                if not isinstance(seg[0], PartitionStep):
                    ops = operators(seg)  # type: ignore[arg-type]
                    plans[i] = (ops, workers_that_fit(ops, cluster, address, self.engine.workers))
        kept = list(docs)
        rejected: list[Doc] = []
        ready: list[Stage] = []
        try:
            for seg in segments:
                if isinstance(seg[0], PartitionStep):
                    seg[0].setup(models)
                    ready.append(seg[0])
            for seg, plan in zip(segments, plans, strict=True):
                if plan is None:
                    kept = self._run_step(seg[0], kept, rejected, progress)  # type: ignore[arg-type]
                else:
                    kept = self._run_remote(*plan, factory, kept, rejected, progress)
        finally:
            for stage in reversed(ready):
                stage.teardown()
        return StepResult(kept, rejected)

    def _run_step(self, step: PartitionStep, docs: list[Doc], rejected: list[Doc], progress: Progress | None) -> list[Doc]:
        start = time.perf_counter()
        if isinstance(step, Dedup):  # signatures and band buckets on the cluster, the same decisions (ray_dedup.py)
            self.engine.connect()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
                result = run_dedup(step, docs, self.batch_size or DEFAULT_BATCH, self.engine.workers, _RETRIES,
                                   progress)
        else:
            result = step.run(docs)
        s = self.stats[step.name]
        s.add(len(docs), len(result.kept), len(result.rejected), time.perf_counter() - start)
        if progress:
            progress(f"{s.name}: {s.docs_in} in, {s.kept} kept, {s.rejected} rejected ({s.docs_per_second:,.0f} docs/s)")
        rejected.extend(result.rejected)
        return result.kept

    def _run_remote(self, ops: list[Chain], workers: int, factory: ModelsFactory, docs: list[Doc],
                    rejected: list[Doc], progress: Progress | None) -> list[Doc]:
        """The segment over every document; the documents an out-of-memory failure left go again in half blocks."""
        if not docs:
            return []
        size = first_size = self.batch_size or DEFAULT_BATCH
        todo: list[int] = list(range(len(docs)))
        outputs: list[pa.Table] = []
        while todo:
            try:
                self._stream(ops, workers, factory, docs, todo, size, outputs, progress)
                break
            except Exception as err:
                if not out_of_memory(err):
                    raise
                through = {pos for block in outputs for pos in block[POS].to_pylist()}
                todo = [pos for pos in todo if pos not in through]
                if size == 1:
                    raise StageOutOfMemory(_oom_message(ops, err, first_size)) from err
                size = max(1, size // 2)
                if progress:
                    progress(f"out of memory on a block of {size * 2} documents ({_oom_stage(ops, err)}): "
                             f"running the {len(todo)} documents not yet through again in blocks of {size}")
        got = collect(outputs, self.batch_size)
        for name, counts in got.stats["stages"].items():
            self.stats[name].add(*counts)
        for pid, mb in got.stats["rss_mb"].items():
            self.worker_peak_rss_mb[pid] = max(mb, self.worker_peak_rss_mb.get(pid, 0.0))
        rejected.extend(_into(docs, got.rejected))
        if progress:
            for s in (self.stats[stage.name] for op in ops for stage in op.stages):
                progress(f"{s.name}: {s.docs_in} in, {s.kept} kept, {s.rejected} rejected "
                         f"({s.docs_per_second:,.0f} docs/s per worker)")
        return _into(docs, got.kept)

    def _stream(self, ops: list[Chain], workers: int, factory: ModelsFactory, docs: list[Doc], todo: list[int],
                size: int, outputs: list[pa.Table], progress: Progress | None) -> None:
        """The documents at ``todo`` through the segment's operators in blocks of ``size``, output appended as it comes."""
        blocks = input_blocks(docs, size, todo)
        workers = min(workers, len(blocks))  # an actor costs seconds to start (imports, stage state): none idle
        ds = ray.data.from_arrow(blocks)
        first = 0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
            for op in ops:
                r = op.resources
                ds = ds.map_batches(ChainWorker, fn_constructor_kwargs={"chain": op, "first": first, "factory": factory},
                                    batch_size=None, batch_format="pyarrow", zero_copy_batch=True,
                                    compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=r.cpus,
                                    num_gpus=r.gpus, memory=int(r.memory_gb * 2**30), **_RETRIES)
                first += len(op.stages)
        done, started = len(docs) - len(todo), time.perf_counter()
        for block in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            outputs.append(block)
            done += block.num_rows
            if progress:
                rate = (done - len(docs) + len(todo)) / max(time.perf_counter() - started, 1e-9)
                progress(f"{done}/{len(docs)} documents through {sum(len(op.stages) for op in ops)} stages on "
                         f"{workers} worker(s) per operator ({rate:,.0f} docs/s, "
                         f"ETA {(len(docs) - done) / max(rate, 1e-9):.0f}s)")


class StageOutOfMemory(MemoryError):
    """A record stage ran out of memory even on a block of one document."""


class BlockOutOfMemory(MemoryError):
    """Raised in a worker: ``stage`` ran out of memory on a block of ``rows`` documents."""

    def __init__(self, stage: str, rows: int) -> None:
        super().__init__(stage, rows)
        self.stage, self.rows = stage, rows

    def __str__(self) -> str:
        return f"stage {self.stage!r} ran out of memory on a block of {self.rows} document(s)"


_NAMED = re.compile(r"BlockOutOfMemory: stage '(?P<stage>[^']+)' ran out of memory")
# what Ray says when its memory monitor (or the kernel) killed a worker for memory
_OOM_TEXT = ("running low on memory", "OutOfMemoryError", "killed by the memory monitor", "out of memory")


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` or what caused it is a worker running out of memory (a MemoryError, or a worker killed for it)."""
    return any(isinstance(cause, (MemoryError, ray.exceptions.OutOfMemoryError)) or
               any(text in str(cause) for text in _OOM_TEXT) for cause in _causes(err))


def _named(err: BaseException) -> str | None:
    """The stage a worker's ``BlockOutOfMemory`` names (Ray Data passes it on as the text of its traceback)."""
    for cause in _causes(err):
        if isinstance(cause, BlockOutOfMemory):
            return cause.stage
        if match := _NAMED.search(str(cause)):
            return match["stage"]
    return None


def _oom_stage(ops: Sequence[Chain], err: BaseException) -> str:
    """The stage that ran out of memory when the worker said so; the operators that may have when it died instead."""
    named = _named(err)
    return f"stage {named!r}" if named else f"a worker of {' or '.join(repr(op.name) for op in ops)} died"


def _oom_message(ops: Sequence[Chain], err: BaseException, first_size: int) -> str:
    named = _named(err)
    stages = [s for op in ops for s in op.stages if named is None or s.name == named]
    declared = ", ".join(f"{s.name} {s.resources.memory_gb:g} GB" for s in stages)
    return (f"out of memory on the Ray cluster even on a block of 1 document ({_oom_stage(ops, err)}); memory_gb "
            f"declared per worker: {declared}; blocks of {first_size} were halved down to 1. Give the stage more "
            f"memory_gb (and the cluster's nodes the memory), or shorten the documents")


def _into(originals: list[Doc], results: list[tuple[int, Doc]]) -> list[Doc]:
    """The caller's own dicts, updated to the workers' results (the local runner edits them in place)."""
    out = []
    for pos, result in results:
        doc: dict[str, Any] = originals[pos]
        doc.clear()
        doc.update(result)
        out.append(doc)
    return out
