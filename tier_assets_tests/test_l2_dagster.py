"""L2 through real Dagster: the versioned classifier asset, selection, accounting and staleness
(promotion through the classifier gate: test_promotion).

The embedded SmolLM2-135M annotates for real (a few seeds, so a test stays under a minute).
"""

from __future__ import annotations

import json

import pytest
from dagster import DagsterInstance, build_schedule_context, materialize

from tier_assets.curation.accounting import one_to_one_problems
from tier_assets.curation.catalog import connect
from tier_assets.curation.l2.settings import load_l2_settings
from tier_assets.curation.l2.train import classifier_dir, current_version
from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.staleness import stale_partitions
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.definitions import build_definitions
from tier_assets.defs.l0 import l0_raw
from tier_assets.defs.l1 import l1_filtered
from tier_assets.defs.l2 import l2_classifier, l2_selected
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.defs.resources import EmbedderResource, LLMResource, TierStoreResource

from .conftest import DEMO_DATA

EN_SOURCES = [DEMO_DATA / "en" / "redpajama-c4-sample.jsonl", DEMO_DATA / "en" / "redpajama-cc-2023-06-sample.jsonl"]
SMALL = "seeds: 8\nmax_references: 4\nmax_chars: 300"  # short reads: the 135M annotates 4x faster


def _config(asset: str, overrides: str) -> dict:
    return {"ops": {asset: {"config": {"overrides_yaml": overrides}}}}


def _resources(data_root) -> dict:
    return {"tier_store": TierStoreResource(data_root=str(data_root)), "llm": LLMResource(), "embedder": EmbedderResource()}


def _l1(instance: DagsterInstance, data_root, batch: str = "b1") -> None:
    entries = [SourceEntry("rp", "en", "jsonl", str(p), (), f"rp/{p.name}") for p in EN_SOURCES]
    write_manifest(data_root, BatchManifest(batch, now_iso(), entries))
    instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, [batch])
    assert materialize([l0_raw, l1_filtered], instance=instance, partition_key=partition_key("en", batch),
                       resources=_resources(data_root)).success


def _classifier(instance: DagsterInstance, data_root, overrides: str = SMALL):
    result = materialize([l2_classifier], instance=instance, partition_key="en", resources=_resources(data_root),
                         run_config=_config("l2_classifier", overrides))
    assert result.success
    return result.asset_materializations_for_node("l2_classifier")[0].metadata


def _select(instance: DagsterInstance, data_root, batch: str = "b1", overrides: str = ""):
    return materialize([l2_selected], instance=instance, partition_key=partition_key("en", batch),
                       resources=_resources(data_root), run_config=_config("l2_selected", overrides),
                       raise_on_error=False)


def test_classifier_asset_selection_accounting_and_staleness(dagster_instance, data_root):
    _l1(dagster_instance, data_root)
    store = TierStore(data_root)
    l1_count = store.count(PartitionRef("L1", "en", "b1"))
    assert l1_count >= 8

    meta = _classifier(dagster_instance, data_root)
    version = meta["classifier_version"].value
    assert current_version(store.root, "en") == version
    base = classifier_dir(store.root, "en") / version
    card = json.loads((base / "card.json").read_text())
    assert card["version"] == version and card["domain"] == "en"
    assert card["annotator"]["model_id"].startswith("HuggingFaceTB/SmolLM2-135M")
    assert card["seed_sources"] == {"sample": 8, "reference": 4}
    seeds = [json.loads(line) for line in (base / "seeds.jsonl").open()]
    assert len(seeds) == 12 and meta["seeds_in"].value == 12
    assert all((s["score"] is None) == (s["reason"] is not None) for s in seeds)  # unscored have a reason
    assert meta["annotated_now"].value == 12

    result = _select(dagster_instance, data_root)
    assert result.success
    sel = result.asset_materializations_for_node("l2_selected")[0].metadata
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "records_accounted"
    assert one_to_one_problems(store, "L1", "L2", "en", "b1") == []
    kept, rejected = store.count(PartitionRef("L2", "en", "b1")), store.count(PartitionRef("L2", "en", "b1"), "rejected")
    assert kept + rejected == l1_count == sel["l1_input"].value
    assert kept == -(-l1_count // 2)  # default: the best half (ceil)
    con = connect(store)
    rows = con.execute("SELECT score, json_extract_string(models, '$.l2.classifier_version') FROM l2 "
                       "UNION ALL SELECT score, json_extract_string(models, '$.l2.classifier_version') "
                       "FROM l2_rejected").fetchall()
    assert {v for _, v in rows} == {version}
    assert all(0.0 <= s <= 5.0 for s, _ in rows)
    worst_kept = con.execute("SELECT min(score) FROM l2").fetchall()[0][0]
    best_rejected, reason, detail = con.execute(
        "SELECT score, reason, detail FROM l2_rejected ORDER BY score DESC LIMIT 1").fetchall()[0]
    assert worst_kept >= best_rejected and reason == "outside_top_fraction" and "score=" in detail
    con.close()
    assert stale_partitions(store, ["L2"]) == []

    # a threshold instead of a fraction, from the launchpad
    assert _select(dagster_instance, data_root, overrides="{threshold: 5.0, top_fraction: null}").success
    assert store.count(PartitionRef("L2", "en", "b1")) == 0
    assert store.count(PartitionRef("L2", "en", "b1"), "rejected") == l1_count

    # retraining on another seed sample gives a new version: the L2 partition becomes stale and the
    # nightly schedule asks for it; annotations already made are reused from the cache
    meta2 = _classifier(dagster_instance, data_root, SMALL + "\nseed: 7")
    assert meta2["classifier_version"].value != version
    assert meta2["annotated_now"].value < 12
    (stale,) = stale_partitions(store, ["L2"])
    assert (stale.domain, stale.batch, stale.recorded, stale.current) == ("en", "b1", version,
                                                                          meta2["classifier_version"].value)
    defs = build_definitions(str(data_root))
    schedule = defs.get_schedule_def("stale_partitions_backfill")
    with build_schedule_context(instance=dagster_instance, resources=_resources(data_root),
                                repository_def=defs.get_repository_def()) as ctx:
        requests = schedule.evaluate_tick(ctx).run_requests
    assert [(r.partition_key, [k.to_user_string() for k in r.asset_selection]) for r in requests] == [
        ("b1|en", ["l2_selected"])]
    assert _select(dagster_instance, data_root).success
    assert stale_partitions(store, ["L2"]) == []


def test_l2_without_classifier_or_seeds_fails_clearly(dagster_instance, data_root):
    _l1(dagster_instance, data_root)
    result = _select(dagster_instance, data_root)
    assert not result.success
    assert "materialize l2_classifier[en] first" in str(result.get_step_failure_events()[0].step_failure_data.error)

    # zh has no L1 data and no reference files: too few seeds, said plainly
    result = materialize([l2_classifier], instance=dagster_instance, partition_key="zh",
                         resources=_resources(data_root), raise_on_error=False)
    assert not result.success
    assert "only 0 annotated seeds" in str(result.get_step_failure_events()[0].step_failure_data.error)


def test_l2_recipe_validation():
    assert load_l2_settings("en").reference_paths[0].is_file()
    with pytest.raises(ValueError, match="exactly one of threshold or top_fraction"):
        load_l2_settings("en", {"threshold": 3.0})
    with pytest.raises(ValueError, match="unknown setting"):
        load_l2_settings("en", {"seed_count": 3})
    with pytest.raises(ValueError, match="reference file not found"):
        load_l2_settings("en", {"references": ["nope.jsonl"]})
    with pytest.raises(ValueError, match="unknown domain"):
        load_l2_settings("fr")
