# ruff: noqa: E402  (Ray is optional: the module is skipped before its Ray imports when it is absent)
"""The Ray engine gives what the local engine gives, survives a dead worker, and fails fast with a message.

One local Ray (2 CPUs, started by ``ray.init``) serves the module. The tiers run through
their own runners (``run_l1_partition``, ``run_l2_partition``) with
``TIER_ASSETS_ENGINE`` switched between ``local`` and ``ray``, on the demo's en and code
data. Semantic dedup is off: its embeddings would only add the same MiniLM minutes to
each mode. Dedup on Ray (signatures on actors, band buckets by a group-by) is checked
against local mode at the step, on small blocks so that buckets span blocks.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]'")

from tier_assets.curation.engines import engine_from_env
from tier_assets.curation.engines.local import LocalEngine
from tier_assets.curation.engines.ray import RayEngine, RayPipeline
from tier_assets.curation.engines.ray_dedup import candidates_on_ray
from tier_assets.curation.l0 import ingest_partition
from tier_assets.curation.l1.dedup import Dedup, DedupConfig, compute_signatures
from tier_assets.curation.l1.dedup.clusters import band_keys, lsh_candidates
from tier_assets.curation.l1.dedup.signatures import matrix
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.l1.tier import from_l0, l1_stages, run_l1_partition
from tier_assets.curation.l2.distill import Seed, distill
from tier_assets.curation.l2.settings import L2Settings
from tier_assets.curation.l2.tier import run_l2_partition
from tier_assets.curation.pipeline import Doc, Models, Pipeline, RecordStage, Resources, StepResult
from tier_assets.curation.schema import derive_doc_id
from tier_assets.curation.sources import expand, load_registry
from tier_assets.curation.storage import PartitionRef, TierStore

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NO_SEMANTIC = {"dedup": {"semantic": False}}
pytestmark = pytest.mark.slow  # runs a Ray, loads MiniLM


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def demo_l0(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Doc]]:
    """The demo's en and code sources as L0 records (what `tier-assets demo` ingests)."""
    store = TierStore(tmp_path_factory.mktemp("demo") / "data")
    specs = load_registry()
    out = {}
    for domain in ("en", "code"):
        ref = PartitionRef("L0", domain, "b1")
        ingest_partition(store, ref, [e for s in specs if s.domain == domain for e in expand(s)])
        out[domain] = store.read_docs(ref)
    return out


@pytest.fixture(scope="module")
def classifier():
    """Distilled from human quality labels, as in test_stage_contract.py."""
    rows = [json.loads(line) for line in (DATA / "quality-dev" / "dclm-human-quality-dev.jsonl").open()][:40]
    seeds = [Seed(f"dev-{i}", r["text"][:1500], float(r["label"])) for i, r in enumerate(rows)]
    return distill(seeds, {"model": "human labels", "backend": "none", "recipe": "judge"}, "ray-test")


def content(store: TierStore, ref: PartitionRef) -> dict[str, list[str]]:
    """A written partition's records, kept and rejected, as sorted canonical JSON (content, not file bytes)."""
    def rows(kind: str) -> list[str]:
        return sorted(json.dumps(d, sort_keys=True, default=str) for d in store.read_docs(ref, kind))
    return {"kept": rows("tiers"), "rejected": rows("rejected")}


def l2_outcome(store: TierStore, ref: PartitionRef) -> tuple[set[str], set[tuple[str, str]], dict[str, float]]:
    kept, rejected = store.read_docs(ref), store.read_docs(ref, "rejected")
    return ({d["doc_id"] for d in kept}, {(d["doc_id"], d["reason"]) for d in rejected},
            {d["doc_id"]: d["score"] for d in kept + rejected})


def run_tiers(store: TierStore, domain: str, classifier: Any, per_batch: int | None) -> None:
    run_l1_partition(store, load_l1_settings(domain, {**NO_SEMANTIC, "records_per_batch": per_batch}), "b1")
    run_l2_partition(store, L2Settings(domain, top_fraction=0.3, records_per_batch=per_batch), "b1", classifier)


# en: 700 documents in blocks of 200 (~80 s); code: one block
@pytest.mark.parametrize(("domain", "per_batch"), [("en", 200), ("code", None)])
def test_demo_l0_to_l2_on_ray_equals_local(demo_l0: dict[str, list[Doc]], classifier: Any, domain: str,
                                           per_batch: int | None, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    stores = {}
    for engine in ("local", "ray"):
        monkeypatch.setenv("TIER_ASSETS_ENGINE", engine)
        stores[engine] = store = TierStore(tmp_path / engine)
        store.write(PartitionRef("L0", domain, "b1"), demo_l0[domain])
        run_tiers(store, domain, classifier, per_batch)
    l1 = PartitionRef("L1", domain, "b1")
    local_l1 = content(stores["local"], l1)
    assert local_l1["kept"] and local_l1["rejected"]  # L1 decided both ways
    assert content(stores["ray"], l1) == local_l1
    local, on_ray = (l2_outcome(stores[e], PartitionRef("L2", domain, "b1")) for e in ("local", "ray"))
    assert local[0] and local[1]
    assert on_ray[:2] == local[:2]
    assert on_ray[2].keys() == local[2].keys()
    assert max(abs(score - local[2][i]) for i, score in on_ray[2].items()) < 1e-6


def as_batch(docs: list[Doc], batch: str) -> list[Doc]:
    """The records as a batch of their own would ingest them (new L0 ids)."""
    return [{**d, "batch": batch, "doc_id": derive_doc_id("L0", [d["doc_id"]], batch)} for d in docs]


def test_dedup_across_batches_does_not_depend_on_materialization_order(
        demo_l0: dict[str, list[Doc]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """b2 repeats half of b1. Ray mode: b2 first (b1's signatures rebuilt from L0 on Ray), then b1, then b2 again.

    (That ray mode equals local mode is the test above; here the earlier batch must win in either order.)
    """
    monkeypatch.setenv("TIER_ASSETS_ENGINE", "ray")
    docs = demo_l0["en"]
    b1, b2 = as_batch(docs[:60], "b1"), as_batch(docs[30:90], "b2")
    store = TierStore(tmp_path / "data")
    store.write(PartitionRef("L0", "en", "b1"), b1)
    store.write(PartitionRef("L0", "en", "b2"), b2)
    settings = load_l1_settings("en", NO_SEMANTIC)  # one block per run: one actor to start, not two
    ref = PartitionRef("L1", "en", "b2")
    _, before = run_l1_partition(store, settings, "b2")
    b2_before = content(store, ref)
    run_l1_partition(store, settings, "b1")
    _, after = run_l1_partition(store, settings, "b2")
    assert before.stages["dedup"].rejected == after.stages["dedup"].rejected > 0
    assert content(store, ref) == b2_before


class DieOnce(RecordStage):
    """Kills its worker process the first time any worker runs it (a marker file remembers), then passes docs on."""

    name = "die_once"

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def process(self, docs: list[Doc]) -> StepResult:
        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)
        return StepResult(docs, [])


def test_a_worker_killed_mid_l1_is_replaced_and_the_result_equals_local(
        demo_l0: dict[str, list[Doc]], tmp_path: Path) -> None:
    settings = load_l1_settings("en", {**NO_SEMANTIC, "records_per_batch": 25})
    docs = demo_l0["en"][:100]

    def stages(marker: Path) -> list:
        base = l1_stages(settings, [])
        return [*base[:9], DieOnce(marker), *base[9:]]  # after the mappers, before language id

    marker = tmp_path / "died"
    on_ray = RayEngine().pipeline(stages(marker), 25)
    result = on_ray.run([from_l0(d) for d in copy.deepcopy(docs)])
    assert marker.exists()  # a worker did die
    local_run = Pipeline(stages(marker), 25)
    local = local_run.run([from_l0(d) for d in copy.deepcopy(docs)])
    assert result.kept == local.kept and result.rejected == local.rejected  # same documents, same order
    assert local.kept and local.rejected
    counts = {name: (s.docs_in, s.kept, s.rejected) for name, s in local_run.stats.items()}
    assert {name: (s.docs_in, s.kept, s.rejected) for name, s in on_ray.stats.items()} == counts  # killed batch counted once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_ray_address_fails_naming_it_and_writes_nothing(
        demo_l0: dict[str, list[Doc]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("TIER_ASSETS_ENGINE", "ray")
    monkeypatch.setenv("RAY_ADDRESS", address)
    store = TierStore(tmp_path / "data")
    store.write(PartitionRef("L0", "code", "b1"), demo_l0["code"][:5])
    with pytest.raises(ConnectionError, match=f"no Ray cluster at RAY_ADDRESS={address}: Connection refused"):
        run_l1_partition(store, load_l1_settings("code", NO_SEMANTIC), "b1")
    assert not store.exists(PartitionRef("L1", "code", "b1"))
    assert not store.exists(PartitionRef("L1", "code", "b1"), "rejected")


class WantsGPU(RecordStage):
    name = "wants_gpu"
    resources = Resources(gpus=1.0)

    def process(self, docs: list[Doc]) -> StepResult:
        return StepResult(docs, [])


def test_a_gpu_stage_on_a_cluster_without_gpus_fails_with_a_message() -> None:
    assert ray.cluster_resources().get("GPU", 0) == 0
    with pytest.raises(RuntimeError, match=r"stage 'wants_gpu' asks for 1 GPU per worker, but the Ray cluster at "
                                           r"\S+ has 0 in all; it would wait forever"):
        RayEngine().pipeline([WantsGPU()], 10).run([{"doc_id": "a", "text": "x"}])


def test_the_engine_setting() -> None:
    assert isinstance(engine_from_env({}), LocalEngine)
    assert isinstance(engine_from_env({}).pipeline([WantsGPU()], 3), Pipeline)
    ray_engine = engine_from_env({"TIER_ASSETS_ENGINE": "ray", "RAY_ADDRESS": "127.0.0.1:6379"})
    assert isinstance(ray_engine, RayEngine) and ray_engine.address == "127.0.0.1:6379"
    assert isinstance(ray_engine.pipeline([WantsGPU()], 3), RayPipeline)
    with pytest.raises(ValueError, match="TIER_ASSETS_ENGINE='spark': known engines are"):
        engine_from_env({"TIER_ASSETS_ENGINE": "spark"})


MINHASH = DedupConfig(semantic=False)


def decided(result: StepResult) -> tuple[list[str], list[tuple[str, str, str, str, str]]]:
    """Kept ids, and per rejected document its id, stage, reason, detail and cluster (the kept twin)."""
    return ([d["doc_id"] for d in result.kept],
            [(d["doc_id"], d["stage"], d["reason"], d["detail"], d["signals"]["dedup"]["dup_cluster"])
             for d in result.rejected])


def dedup_both_ways(docs: list[Doc], earlier: list, block: int) -> tuple[tuple, tuple, Dedup]:
    """The Dedup step on copies of ``docs``, local and on Ray (blocks of ``block``); the Ray step for its signatures."""
    local_step, ray_step = Dedup(MINHASH, earlier), Dedup(MINHASH, earlier)
    local = Pipeline([local_step]).run(copy.deepcopy(docs), models=Models())
    on_ray = RayEngine().pipeline([ray_step], block).run(copy.deepcopy(docs), models=Models())
    assert ray_step.signatures is not None and ray_step.signatures.equals(local_step.signatures, check_metadata=True)
    return decided(local), decided(on_ray), ray_step


def near_copy(doc: Doc, i: int) -> Doc:
    """The document with one word changed and its last tenth cut (Jaccard ~0.85 at 5-word shingles)."""
    words = doc["text"].split()
    words[len(words) // 3] = f"changed{i}"
    return {**doc, "doc_id": f"{doc['doc_id']}-near{i}", "text": " ".join(words[:len(words) * 9 // 10])}


def test_distributed_minhash_on_a_demo_partition_equals_local(demo_l0: dict[str, list[Doc]]) -> None:
    """b2 repeats part of b1 and adds near copies of its own documents; dedup of b2 against b1, blocks of 16."""
    docs = [from_l0(d) for d in demo_l0["en"]]
    b1 = as_batch(docs[:80], "b1")
    b2 = as_batch(docs[40:120], "b2")
    b2 += [near_copy(d, i) for i, d in enumerate(b2[45:55])]
    earlier = [compute_signatures(b1, MINHASH)]
    local, on_ray, step = dedup_both_ways(b2, earlier, 16)
    assert on_ray == local
    reasons = {r[2] for r in local[1]}
    assert reasons == {"exact_duplicate", "near_duplicate"}, reasons
    assert sum(r[4] in {d["doc_id"] for d in b1} for r in local[1]) >= 35  # the repeats name their twin in b1
    # the band buckets themselves: the group-by gives exactly the local candidate pairs
    sigs = matrix(pa.concat_tables([earlier[0], step.signatures])["minhash"], MINHASH.num_perm, np.uint32, "minhash")
    want = lsh_candidates(sigs, MINHASH.bands, MINHASH.rows, MINHASH.seed)
    got = candidates_on_ray(sigs, MINHASH.bands, MINHASH.rows, MINHASH.seed, block_size=16, workers=2, retries=0)
    assert len(want[0]) > 40 and all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_dedup_on_ray_the_earlier_batch_wins_in_either_order(demo_l0: dict[str, list[Doc]]) -> None:
    """Batches "b1" and "b2" share 20 documents; deciding b2 first or b1 first, b1 keeps them and b2 rejects them."""
    docs = [from_l0(d) for d in demo_l0["code"]][:60]
    b1, b2 = as_batch(docs[:40], "b1"), as_batch(docs[20:60], "b2")
    sigs = {"b1": compute_signatures(b1, MINHASH), "b2": compute_signatures(b2, MINHASH)}
    engine = RayEngine()

    def decide(batch: list[Doc], earlier: list) -> tuple:
        return decided(engine.pipeline([Dedup(MINHASH, earlier)], 16).run(copy.deepcopy(batch), models=Models()))

    b2_first = decide(b2, [sigs["b1"]])
    b1_after = decide(b1, [sigs["b2"]])  # a later batch's signatures are there, and must not count
    assert b1_after == decide(b1, [])
    assert decide(b2, [sigs["b1"], sigs["b2"]]) == b2_first
    b1_ids = {d["doc_id"] for d in b1}
    shared = [r for r in b2_first[1] if r[4] in b1_ids]
    assert len(shared) >= 20
    assert {r[4] for r in shared} <= set(b1_after[0])  # every twin b2 names is kept by b1


def test_near_duplicates_whose_band_buckets_span_blocks_are_found(demo_l0: dict[str, list[Doc]]) -> None:
    """A hand-made set: three near copies of one document and two of another, spread over blocks of 4."""
    long_docs = sorted((from_l0(d) for d in demo_l0["en"]), key=lambda d: -len(d["text"].split()))[:8]
    a, b, *others = as_batch(long_docs, "b1")
    docs = [a, *others[:3], near_copy(a, 1), *others[3:], near_copy(b, 1), b, near_copy(a, 2), near_copy(b, 2),
            near_copy(a, 3)]
    blocks = [[d["doc_id"] for d in docs[i:i + 4]] for i in range(0, len(docs), 4)]
    local, on_ray, step = dedup_both_ways(docs, [], 4)
    assert on_ray == local
    assert {(r[0], r[2], r[4]) for r in on_ray[1]} == {
        (f"{a['doc_id']}-near1", "near_duplicate", a["doc_id"]), (f"{a['doc_id']}-near2", "near_duplicate", a["doc_id"]),
        (f"{a['doc_id']}-near3", "near_duplicate", a["doc_id"]), (b["doc_id"], "near_duplicate", f"{b['doc_id']}-near1"),
        (f"{b['doc_id']}-near2", "near_duplicate", f"{b['doc_id']}-near1")}
    # a and its near copies share a band bucket although they sit in different blocks
    sigs = matrix(step.signatures["minhash"], MINHASH.num_perm, np.uint32, "minhash")
    keys = np.stack([band_keys(sigs, band, MINHASH.rows, MINHASH.seed) for band in range(MINHASH.bands)], axis=1)
    at = {d["doc_id"]: i for i, d in enumerate(docs)}
    near = at[f"{a['doc_id']}-near3"]
    assert (keys[at[a["doc_id"]]] == keys[near]).any()
    assert not any(a["doc_id"] in blk and f"{a['doc_id']}-near3" in blk for blk in blocks)


@pytest.mark.heavy  # ~70 s on 2 busy cores: MiniLM loads in the driver and in the actor
def test_semantic_dedup_on_ray_embeds_on_an_actor_and_decides_as_local(demo_l0: dict[str, list[Doc]]) -> None:
    """Embeddings come from the embedder built in a Ray actor; FAISS runs in the driver; same decisions."""
    from tier_assets.curation.models.embedder import get_embedder

    config = DedupConfig()
    docs = [from_l0(d) for d in demo_l0["en"][:12]]
    docs += [near_copy(d, i) for i, d in enumerate(docs[:2])] + [{**docs[5], "doc_id": "copy-of-5"}]
    models = Models(embedder=get_embedder())
    local_step, ray_step = Dedup(config), Dedup(config)
    local = decided(Pipeline([local_step]).run(copy.deepcopy(docs), models=models))
    on_ray = decided(RayEngine(workers=1).pipeline([ray_step], 6).run(copy.deepcopy(docs), models=models))
    assert on_ray == local and len(local[1]) >= 3
    ours, theirs = ray_step.signatures, local_step.signatures
    assert ours.drop_columns(["embedding"]).equals(theirs.drop_columns(["embedding"]), check_metadata=True)
    vectors = [np.array(t["embedding"].to_pylist(), np.float32) for t in (ours, theirs)]
    assert vectors[0].shape == (len(docs), 3 * 384)
    assert np.abs(vectors[0] - vectors[1]).max() < 1e-5  # batched MiniLM differs by ~1e-7


class Hungry(RecordStage):
    """Allocates and touches ``mb_per_doc`` MB per document of its batch; in a Ray worker it may hold only what it
    declared (``memory_gb``, set as the worker's data limit), so a big batch dies with a real MemoryError."""

    name = "hungry"

    def __init__(self, mb_per_doc: int, memory_gb: float) -> None:
        self.mb_per_doc = mb_per_doc
        self.resources = Resources(memory_gb=memory_gb)
        self.driver = os.getpid()

    def setup(self, models: Models) -> None:
        if os.getpid() != self.driver:  # never limit the test process itself (local mode runs here)
            status = Path("/proc/self/status").read_text()
            data_kb = int(next(line for line in status.splitlines() if line.startswith("VmData:")).split()[1])
            hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
            resource.setrlimit(resource.RLIMIT_DATA, (data_kb * 1024 + int(self.resources.memory_gb * 2**30), hard))

    def process(self, docs: list[Doc]) -> StepResult:
        if os.getpid() != self.driver:
            np.ones(len(docs) * self.mb_per_doc * 2**20, np.uint8)
        kept = [d for d in docs if len(d["text"]) % 3]
        return StepResult(kept, [{**d, "stage": self.name, "reason": "length_mod_3"} for d in docs if d not in kept])


def test_a_block_out_of_memory_is_run_again_in_halves_and_equals_local(demo_l0: dict[str, list[Doc]]) -> None:
    """48 documents x 16 MB = 768 MB > 0.5 GB declared: the block of 48 dies of MemoryError, halves of 384 MB pass."""
    docs = [from_l0(d) for d in demo_l0["en"][:48]]
    messages: list[str] = []
    on_ray = RayEngine(workers=1).pipeline([Hungry(16, 0.5)], 48)
    result = on_ray.run(copy.deepcopy(docs), messages.append)
    assert "out of memory on a block of 48 documents (stage 'hungry'): running the 48 documents not yet through " \
           "again in blocks of 24" in messages
    local_run = Pipeline([Hungry(16, 0.5)], 48)
    local = local_run.run(copy.deepcopy(docs))
    assert local.kept and local.rejected
    assert result.kept == local.kept and result.rejected == local.rejected
    assert (on_ray.stats["hungry"].docs_in, on_ray.stats["hungry"].kept) == (48, len(local.kept))  # counted once


@pytest.mark.heavy  # 44 s of the CI's 25 minutes; the halving retry above runs in make test
def test_a_stage_out_of_memory_on_one_document_fails_naming_it() -> None:
    docs = [{"doc_id": f"d{i}", "text": "x" * 10} for i in range(2)]
    with pytest.raises(MemoryError, match=r"out of memory on the Ray cluster even on a block of 1 document "
                                          r"\(stage 'hungry'\); memory_gb declared per worker: hungry 0.25 GB; "
                                          r"blocks of 2 were halved down to 1"):
        RayEngine(workers=1).pipeline([Hungry(1024, 0.25)], 2).run(docs)
