"""The stage contract: record stages give the same result whatever the batch size, models are set up once.

Batch-size invariance is checked on real tier work: L1 end to end (record stages,
then dedup against an earlier batch) on the demo's web data, L2 (score per document,
select per partition) with a classifier distilled from human labels, and L4 rule
extraction + organization on L1 output. The LLM tiers are checked with their answers
replayed from the LLM cache (tests/test_llm_cache.py covers paying for them).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tier_assets.curation.l0 import ingest_partition
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.l1.tier import candidate_steps, read_l0_docs, run_l1_partition
from tier_assets.curation.l2.distill import Seed, distill
from tier_assets.curation.l2.settings import L2Settings
from tier_assets.curation.l2.tier import l2_stages
from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.models.embedder import get_embedder
from tier_assets.curation.pipeline import (
    Doc,
    Filter,
    Models,
    PartitionStep,
    Pipeline,
    RecordStage,
    Resources,
    StepResult,
    docs_to_table,
    table_to_docs,
)
from tier_assets.curation.sources import SourceEntry
from tier_assets.curation.storage import PartitionRef, TierStore

DEMO = Path(__file__).resolve().parents[1] / "tier_assets" / "demo_data"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BATCH_SIZES = (1, 7, None)


def outcome(kept: list[Doc], rejected: list[Doc]) -> dict[str, Any]:
    """What a run decided, independent of list order and of Python object identity."""
    def norm(d: Doc) -> str:
        return json.dumps({k: v for k, v in d.items() if k != "batch_order"}, sort_keys=True, default=str)
    return {"kept": sorted(map(norm, kept)), "rejected": sorted(map(norm, rejected))}


@pytest.fixture(scope="module")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> TierStore:
    """The demo's English web data as two L0 batches (the second deduplicates against the first)."""
    store = TierStore(tmp_path_factory.mktemp("contract") / "data")
    files = sorted((DEMO / "en").glob("*.jsonl*")) or sorted((DEMO / "en").glob("*"))
    for batch in ("b1", "b2"):
        entries = [SourceEntry("demo-en", "en", "jsonl", str(f), relpath=f.name) for f in files
                   if f.suffix in (".jsonl", ".gz")][:1]
        if not entries:
            pytest.skip("no English demo JSONL")
        ingest_partition(store, PartitionRef("L0", "en", batch), entries)
    return store


# ------------------------------------------------------------------------------------------------ L1


def test_l1_record_stages_are_batch_size_invariant(web_store: TierStore) -> None:
    settings = load_l1_settings("en", {"dedup": {"semantic": False}})
    docs = read_l0_docs(web_store, "en", "b1")[:100]
    assert len(docs) >= 50
    results = {}
    for size in BATCH_SIZES:
        result = Pipeline(candidate_steps(settings), size).run(copy.deepcopy(docs))
        assert len(result.kept) + len(result.rejected) == len(docs)
        results[size] = outcome(result.kept, result.rejected)
    assert results[1] == results[7] == results[None]
    assert results[None]["kept"] and results[None]["rejected"]  # the stages decided something both ways


def test_l1_partition_with_dedup_is_batch_size_invariant(web_store: TierStore, tmp_path: Path) -> None:
    """The whole tier (record stages, then dedup against the earlier batch) writes the same partition."""
    written = {}
    for size in BATCH_SIZES:
        store = TierStore(tmp_path / f"size-{size}")
        for batch in ("b1", "b2"):
            ref = PartitionRef("L0", "en", batch)
            store.write(ref, web_store.read_docs(ref)[:80])
        overrides = {"dedup": {"semantic": False}}
        settings = load_l1_settings("en", {**overrides, "records_per_batch": size})
        assert settings.fingerprint == load_l1_settings("en", overrides).fingerprint  # cutting is not deciding
        run_l1_partition(store, settings, "b1")
        result, stats = run_l1_partition(store, settings, "b2")
        assert stats.stages["dedup"].rejected > 0  # b2 repeats b1, so dedup has work to do
        ref = PartitionRef("L1", "en", "b2")
        written[size] = outcome(store.read_docs(ref), store.read_docs(ref, "rejected"))
    assert written[1] == written[7] == written[None]


def test_l1_settings_reject_a_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="records_per_batch"):
        load_l1_settings("en", {"records_per_batch": 0})


# ------------------------------------------------------------------------------------------------ L2


@pytest.fixture(scope="module")
def classifier():
    rows = [json.loads(line) for line in (DATA / "quality-dev" / "dclm-human-quality-dev.jsonl").open()][:40]
    seeds = [Seed(f"dev-{i}", r["text"][:1500], float(r["label"])) for i, r in enumerate(rows)]
    return distill(seeds, {"model": "human labels", "backend": "none", "recipe": "judge"}, "contract-test")


def test_l2_scoring_and_selection_are_batch_size_invariant(web_store: TierStore, classifier) -> None:
    """Same selection and reasons; scores agree to 1e-6 (batched MiniLM inference differs by ~1e-7)."""
    docs = read_l0_docs(web_store, "en", "b1")[:30]
    runs = {}
    for size in BATCH_SIZES:
        settings = L2Settings("en", top_fraction=0.3, records_per_batch=size)
        result = Pipeline(l2_stages(settings), settings.records_per_batch).run(
            copy.deepcopy(docs), models=Models(classifier=classifier))
        assert len(result.kept) == 9 and len(result.rejected) == 21
        runs[size] = ({d["doc_id"] for d in result.kept}, {(d["doc_id"], d["reason"]) for d in result.rejected},
                      {d["doc_id"]: d["score"] for d in result.kept + result.rejected})
    for size in (1, 7):
        assert runs[size][:2] == runs[None][:2]
        scores = runs[None][2]
        assert max(abs(score - scores[i]) for i, score in runs[size][2].items()) < 1e-6


# ------------------------------------------------------------------------------------------------ L4


def test_l4_rule_extraction_and_organization_are_batch_size_invariant(web_store: TierStore) -> None:
    embedder = get_embedder()
    settings = load_l1_settings("en", {"dedup": {"semantic": False}})
    docs = Pipeline(candidate_steps(settings)).run(read_l0_docs(web_store, "en", "b1")[:80]).kept
    for d in docs:
        d["tier"], d["score"] = "L2", 3.0
    results = {}
    for size in BATCH_SIZES:
        config = L4Settings(llm_extraction=False, records_per_batch=size)
        kept, rejected, stats = build_l4_partition(copy.deepcopy(docs), None, embedder, config)
        results[size] = outcome(kept, rejected)
        assert stats.stages["l4_extract"].docs_in == len(docs)
    assert results[None]["kept"], "the rules found no item in 80 web documents"
    assert results[1] == results[7] == results[None]


# ------------------------------------------------------------------------------------------------ the contract


class Recorder(RecordStage):
    """Counts its lifecycle calls; rejects documents whose text is empty."""

    name = "recorder"
    resources = Resources(models=("embedder",))

    def __init__(self) -> None:
        self.calls = {"setup": 0, "teardown": 0, "process": 0}
        self.model: Any = None

    def setup(self, models: Models) -> None:
        self.calls["setup"] += 1
        self.model = models.require("embedder", self.name)

    def teardown(self) -> None:
        self.calls["teardown"] += 1

    def process(self, docs: list[Doc]) -> StepResult:
        assert self.model is not None, "process before setup"
        self.calls["process"] += 1
        return StepResult([d for d in docs if d["text"]], [d for d in docs if not d["text"]])


class Boom(PartitionStep):
    name = "boom"

    def run(self, docs: list[Doc]) -> StepResult:
        raise RuntimeError("boom")


def test_setup_and_teardown_run_once_per_worker_whatever_the_batch_size() -> None:
    stage = Recorder()
    docs = [{"doc_id": str(i), "text": "x" * (i % 3)} for i in range(10)]
    result = Pipeline([stage], batch_size=1).run(docs, models=Models(embedder="a model"))
    assert stage.calls == {"setup": 1, "teardown": 1, "process": 10}
    assert len(result.kept) == 6 and len(result.rejected) == 4


def test_teardown_runs_when_a_later_stage_fails() -> None:
    stage = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        Pipeline([stage, Boom()], batch_size=3).run([{"doc_id": "1", "text": "a"}], models=Models(embedder="m"))
    assert stage.calls["teardown"] == 1


def test_a_stage_without_its_declared_model_fails_naming_it() -> None:
    with pytest.raises(ValueError, match="'recorder' needs the embedder model"):
        Pipeline([Recorder()]).run([{"doc_id": "1", "text": "a"}])


class ShortText(Filter):
    name = "short_text"

    def check(self, doc: Doc) -> tuple[str, str] | None:
        return ("too_short", f"{len(doc['text'])} chars") if len(doc["text"]) < 5 else None


def test_process_batch_is_process_with_arrow_at_the_boundary() -> None:
    docs = [{"doc_id": "a", "text": "long enough", "signals": {"x": {"n": 1}}, "meta": None},
            {"doc_id": "b", "text": "tiny", "signals": {}, "meta": {"url": "u"}}]
    result = ShortText().process_batch(docs_to_table(docs))
    assert isinstance(result.kept, pa.Table) and result.kept.num_rows == 1
    assert table_to_docs(result.kept) == [docs[0]]
    assert table_to_docs(result.rejected)[0] | {} == {**docs[1], "stage": "short_text", "reason": "too_short",
                                                        "detail": "4 chars"}
    assert (result.stats.docs_in, result.stats.kept, result.stats.rejected) == (2, 1, 1)


def test_pipeline_rejects_a_zero_batch_size_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Pipeline([ShortText()], batch_size=0)
    with pytest.raises(ValueError, match="unique"):
        Pipeline([ShortText(), ShortText()])
