"""Promotion sensors against a real instance: real materializations and check results."""

from __future__ import annotations

from dagster import SkipReason, build_sensor_context, materialize

from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.defs.l0 import l0_raw
from tier_assets.defs.l1 import l1_filtered
from tier_assets.defs.promotion import build_promotion_sensors
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.defs.resources import TierStoreResource
from tier_assets.defs.stats import tier_stats

from .conftest import DEMO_DATA

SE = DEMO_DATA / "math" / "stackexchange-sample-a.jsonl"
RP = DEMO_DATA / "en" / "redpajama-c4-sample.jsonl"


def _sensors():
    sensors = {s.name: s for s in build_promotion_sensors(["l0_raw", "l1_filtered", "tier_stats"])}
    assert set(sensors) == {"promote_l0_raw_to_l1_filtered", "tier_stats_sensor"}
    return sensors


def _tick(sensor, instance, resources, cursor=None):
    with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as ctx:
        result = sensor(ctx)
        return result, ctx.cursor if isinstance(result, SkipReason) else result.cursor


def test_promotes_only_partitions_whose_checks_passed(dagster_instance, data_root):
    resources = {"tier_store": TierStoreResource(data_root=str(data_root))}
    good = SourceEntry("rp", "en", "jsonl", str(RP), (), "rp/c4.jsonl")
    # the same file registered twice under one name: every record gets the same doc_id twice,
    # so L0's accounting check fails for real and the partition must not be promoted
    twice = SourceEntry("se", "math", "jsonl", str(SE), (), "se/a.jsonl")
    write_manifest(data_root, BatchManifest("b1", now_iso(), [good, twice, twice]))
    dagster_instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])
    for domain in ("en", "math"):
        materialize([l0_raw], instance=dagster_instance, partition_key=partition_key(domain, "b1"),
                     resources=resources, raise_on_error=False)

    promote = _sensors()["promote_l0_raw_to_l1_filtered"]
    result, cursor = _tick(promote, dagster_instance, resources)
    assert [r.partition_key for r in result.run_requests] == ["b1|en"]
    (request,) = result.run_requests
    assert [k.to_user_string() for k in request.asset_selection] == ["l1_filtered"]

    # next tick: nothing new, no duplicate request
    again, _ = _tick(promote, dagster_instance, resources, cursor)
    assert isinstance(again, SkipReason)

    # the requested run executes for real and L1 exists for the promoted partition only
    res = materialize([l1_filtered], instance=dagster_instance, partition_key=request.partition_key,
                      resources=resources)
    assert res.success
    store = TierStore(data_root)
    assert store.exists(PartitionRef("L1", "en", "b1"))
    assert not store.exists(PartitionRef("L1", "math", "b1"))

    # the stats sensor asks for one refresh, then nothing until a tier is materialized again
    stats = _sensors()["tier_stats_sensor"]
    result, cursor = _tick(stats, dagster_instance, resources)
    assert len(result.run_requests) == 1
    res = materialize([tier_stats], instance=dagster_instance, resources=resources)
    meta = res.asset_materializations_for_node("tier_stats")[0].metadata
    assert meta["L0_documents"].value == store.count(PartitionRef("L0", "en", "b1")) + store.count(
        PartitionRef("L0", "math", "b1"))
    assert meta["L1_documents"].value == store.count(PartitionRef("L1", "en", "b1"))
    assert "| L1 | en | b1 |" in meta["tier_summary"].value
    assert isinstance(_tick(stats, dagster_instance, resources, cursor)[0], SkipReason)


def test_does_not_repromote_when_next_tier_ran_in_the_same_run(dagster_instance, data_root):
    resources = {"tier_store": TierStoreResource(data_root=str(data_root))}
    write_manifest(data_root, BatchManifest("b1", now_iso(), [SourceEntry("rp", "en", "jsonl", str(RP), (), "rp")]))
    dagster_instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])
    materialize([l0_raw, l1_filtered], instance=dagster_instance, partition_key=partition_key("en", "b1"),
                resources=resources)
    result, _ = _tick(_sensors()["promote_l0_raw_to_l1_filtered"], dagster_instance, resources)
    assert not result.run_requests


def test_stale_schedule_backfills_partitions_of_an_older_recipe(dagster_instance, data_root, tmp_path,
                                                                monkeypatch):
    from dagster import build_schedule_context

    from tier_assets.curation.settings import RECIPES_DIR
    from tier_assets.definitions import build_definitions

    resources = {"tier_store": TierStoreResource(data_root=str(data_root))}
    write_manifest(data_root, BatchManifest("b1", now_iso(), [SourceEntry("rp", "en", "jsonl", str(RP), (), "rp")]))
    dagster_instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])
    materialize([l0_raw, l1_filtered], instance=dagster_instance, partition_key=partition_key("en", "b1"),
                resources=resources)
    defs = build_definitions(str(data_root))
    schedule = defs.get_schedule_def("stale_partitions_backfill")

    def evaluate():
        with build_schedule_context(instance=dagster_instance, resources=resources,
                                    repository_def=defs.get_repository_def()) as ctx:
            return schedule.evaluate_tick(ctx)

    assert not evaluate().run_requests

    # a new recipe (here: another decontamination n-gram size) makes the partition stale
    newer = tmp_path / "l1.yaml"
    newer.write_text((RECIPES_DIR / "l1.yaml").read_text().replace("decontam: {n: 13", "decontam: {n: 12"))
    monkeypatch.setenv("TIER_ASSETS_L1_RECIPE", str(newer))
    (request,) = evaluate().run_requests
    assert request.partition_key == "b1|en"
    assert [k.to_user_string() for k in request.asset_selection] == ["l1_filtered"]
    assert "l1.recipe" in request.tags["tier_assets/stale_reason"]

    materialize([l1_filtered], instance=dagster_instance, partition_key=request.partition_key, resources=resources)
    assert not evaluate().run_requests
