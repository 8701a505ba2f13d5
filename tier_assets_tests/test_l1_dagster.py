"""L1 through real Dagster: accounting check, cross-batch dedup in any order, recipe validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import materialize

from tier_assets.curation.accounting import one_to_one_problems
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.stats import run_sql
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.defs.l0 import l0_raw
from tier_assets.defs.l1 import l1_filtered
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.defs.resources import EmbedderResource, TierStoreResource

from .conftest import DEMO_DATA


def _docs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def two_batches(dagster_instance, data_root, tmp_path):
    """Batch b1: RedPajama C4 + CC samples; batch b2: all of b1 again plus new documents."""
    first = _docs(DEMO_DATA / "en" / "redpajama-c4-sample.jsonl") + _docs(DEMO_DATA / "en" / "redpajama-cc-2023-06-sample.jsonl")
    extra = _docs(DEMO_DATA / "math" / "arxiv-latex-sample.jsonl")[:2]
    (tmp_path / "b1.jsonl").write_text("\n".join(json.dumps(d) for d in first))
    (tmp_path / "b2.jsonl").write_text("\n".join(json.dumps(d) for d in extra + first))
    for batch in ("b1", "b2"):
        write_manifest(data_root, BatchManifest(batch, now_iso(), [
            SourceEntry("rp", "en", "jsonl", str(tmp_path / f"{batch}.jsonl"), (), f"rp/{batch}.jsonl")]))
    dagster_instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1", "b2"])
    return {"tier_store": TierStoreResource(data_root=str(data_root)), "embedder": EmbedderResource()}


def _run(instance, resources, batch, assets=(l0_raw, l1_filtered), **kw):
    return materialize(list(assets), instance=instance, partition_key=partition_key("en", batch),
                       resources=resources, **kw)


def test_l1_accounts_for_every_l0_record_and_dedups_across_batches(dagster_instance, two_batches, data_root):
    store = TierStore(data_root)
    # materialize the later batch first: its dedup must still see b1 (rebuilt from b1's L0)
    _run(dagster_instance, two_batches, "b1", assets=(l0_raw,))
    res = _run(dagster_instance, two_batches, "b2")
    assert res.success
    b2_first = {r["doc_id"]: (r["reason"], r["detail"]) for r in store.read(PartitionRef("L1", "en", "b2"), "rejected").to_pylist()}

    res = _run(dagster_instance, two_batches, "b1")
    assert res.success
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in res.get_asset_check_evaluations()}
    assert checks == {("l0_raw", "records_accounted"): True, ("l1_filtered", "records_accounted"): True}
    assert one_to_one_problems(store, "L0", "L1", "en", "b1") == []

    res = _run(dagster_instance, two_batches, "b2")
    b2_again = {r["doc_id"]: (r["reason"], r["detail"]) for r in store.read(PartitionRef("L1", "en", "b2"), "rejected").to_pylist()}
    assert b2_again == b2_first  # order independent

    b1_kept = store.read(PartitionRef("L1", "en", "b1")).to_pylist()
    assert b1_kept, "some RedPajama documents pass the English filters"
    b1_ids = {d["doc_id"] for d in b1_kept}
    b2_rejected = store.read(PartitionRef("L1", "en", "b2"), "rejected").to_pylist()
    exact = [d for d in b2_rejected if d["reason"] == "exact_duplicate"]
    assert len(exact) == len(b1_kept)
    twins = {json.loads(d["signals"])["dedup"]["dup_twin"] for d in exact}
    assert twins == b1_ids  # every duplicate names its kept twin in the earlier batch
    assert all(d["stage"] == "dedup_exact" for d in exact)
    # no b2 document that duplicates b1 was kept
    b2_kept_text = {d["text"] for d in store.read(PartitionRef("L1", "en", "b2")).to_pylist()}
    assert not b2_kept_text & {d["text"] for d in b1_kept}

    reasons = run_sql(store, "rejection_reasons")
    assert any(r["tier"] == "L1" and r["reason"] == "exact_duplicate" for r in reasons)


def test_invalid_recipe_fails_before_any_work(dagster_instance, two_batches, data_root):
    _run(dagster_instance, two_batches, "b1", assets=(l0_raw,))
    res = _run(dagster_instance, two_batches, "b1", assets=(l1_filtered,), raise_on_error=False,
               run_config={"ops": {"l1_filtered": {"config": {"overrides_yaml": "dedup: {jaccard_threshold: 1.5}"}}}})
    assert not res.success
    error = res.get_step_failure_events()[0].step_failure_data.error
    assert "jaccard_threshold" in (error.message + str(error.cause))
    assert not TierStore(data_root).exists(PartitionRef("L1", "en", "b1"))


@pytest.mark.parametrize("overrides, needle", [
    ({"nonsense": {}}, "unknown section"),
    ({"dedup": {"bandz": 3}}, r"dedup: unknown setting\(s\) \['bandz'\]"),
    ({"langid": {"min_confidence": 2}}, "min_confidence"),
    ({"filters": {"gopher_quality": {"min_doc_words": -5}}}, "min_doc_words"),
])
def test_recipe_validation_messages(overrides, needle):
    with pytest.raises(ValueError, match=needle):
        load_l1_settings("en", overrides)
