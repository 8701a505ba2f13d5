"""Promotion against a real instance: real materializations and check results, and the promotion
sensor's automation conditions evaluated tick after tick with the cursor the daemon would keep."""

from __future__ import annotations

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AutomationCondition,
    DagsterInstance,
    Definitions,
    MultiPartitionKey,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
    map_asset_specs,
)

from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.definitions import build_definitions
from tier_assets.defs.promotion import PROMOTION_SENSOR
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key, partition_key_string
from tier_assets.runner import RunOutcome, run_assets

from .conftest import DEMO_DATA

SE = DEMO_DATA / "math" / "stackexchange-sample-a.jsonl"
RP = DEMO_DATA / "en" / "redpajama-c4-sample.jsonl"
CC = DEMO_DATA / "en" / "redpajama-cc-2023-06-sample.jsonl"
SMALL_CLASSIFIER = {"l2_classifier": "seeds: 8\nmax_references: 4\nmax_chars: 300"}
Request = tuple[str | None, tuple[str, ...]]  # (partition, assets) of one requested run


class Daemon:
    """Ticks of the promotion sensor, each with the cursor the previous one returned, as the daemon runs them."""

    def __init__(self, defs: Definitions, instance: DagsterInstance):
        self.defs, self.instance, self.cursor = defs, instance, None

    def tick(self) -> list[Request]:
        sensor = self.defs.resolve_sensor_def(PROMOTION_SENSOR)
        with build_sensor_context(instance=self.instance, repository_def=self.defs.get_repository_def(),
                                  cursor=self.cursor) as ctx:
            data = sensor.evaluate_tick(ctx)
        self.cursor = data.cursor
        return sorted((None if r.partition_key is None else str(r.partition_key),
                       tuple(sorted(k.to_user_string() for k in r.asset_selection))) for r in data.run_requests)


def _batch(instance: DagsterInstance, data_root, batch: str, entries: list[SourceEntry]) -> None:
    write_manifest(data_root, BatchManifest(batch, now_iso(), entries))
    instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, [batch])


def _run(defs: Definitions, instance: DagsterInstance, keys: list[str], partition: str | MultiPartitionKey | None,
         config: dict[str, str] | None = None) -> RunOutcome:
    return run_assets(defs, instance, keys, partition, config, raise_on_error=False)


def test_failed_check_blocks_and_each_materialization_is_promoted_once(dagster_instance, data_root):
    defs = build_definitions(str(data_root))
    daemon = Daemon(defs, dagster_instance)
    # Dagster's own check condition, for comparison: it reads a check's latest result over all partitions
    eager = AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
    builtin = Definitions(assets=[defs.get_assets_def("l0_raw"),
                                  *map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=eager),
                                                   [defs.get_assets_def("l1_filtered")])],
                          resources=defs.resources)
    builtin_cursor = None

    def builtin_tick() -> set[str]:
        nonlocal builtin_cursor
        result = evaluate_automation_conditions(defs=builtin, instance=dagster_instance, cursor=builtin_cursor)
        builtin_cursor = result.cursor
        return {str(k) for k in result.get_requested_partitions(AssetKey("l1_filtered"))}

    assert daemon.tick() == [] and builtin_tick() == set()  # the daemon starts before the batch arrives
    good = SourceEntry("rp", "en", "jsonl", str(RP), (), "rp/c4.jsonl")
    # the same file registered twice under one name: every record gets the same doc_id twice,
    # so L0's accounting check fails for real and the partition must not be promoted
    twice = SourceEntry("se", "math", "jsonl", str(SE), (), "se/a.jsonl")
    _batch(dagster_instance, data_root, "b1", [good, twice, twice])
    assert not _run(defs, dagster_instance, ["l0_raw"], partition_key("math", "b1"))
    assert daemon.tick() == [] and builtin_tick() == set()

    # a later partition that passes does not release the failed one (Dagster's per-asset condition would)
    assert _run(defs, dagster_instance, ["l0_raw"], partition_key("en", "b1"))
    assert daemon.tick() == [("b1|en", ("l1_filtered",))]
    assert builtin_tick() == {"b1|en", "b1|math"}

    # the same materialization on the next tick: no second request
    assert daemon.tick() == []

    # the requested run executes for real; L1 is then not requested again, and the gate comes next
    assert _run(defs, dagster_instance, ["l1_filtered"], partition_key("en", "b1"))
    store = TierStore(data_root)
    assert store.exists(PartitionRef("L1", "en", "b1")) and not store.exists(PartitionRef("L1", "math", "b1"))
    assert daemon.tick() == [("en", ("l2_classifier",))]
    assert daemon.tick() == []

    # the failed partition is re-run and passes (here: its manifest fixed): now it is promoted
    _batch(dagster_instance, data_root, "b1", [good, twice])
    assert _run(defs, dagster_instance, ["l0_raw"], partition_key("math", "b1"))
    assert daemon.tick() == [("b1|math", ("l1_filtered",))]


def test_a_run_that_made_the_next_tier_too_is_not_promoted_again(dagster_instance, data_root):
    defs = build_definitions(str(data_root))
    daemon = Daemon(defs, dagster_instance)
    assert daemon.tick() == []
    _batch(dagster_instance, data_root, "b1", [SourceEntry("rp", "en", "jsonl", str(RP), (), "rp")])
    assert _run(defs, dagster_instance, ["l0_raw", "l1_filtered"], partition_key("en", "b1"))
    assert daemon.tick() == [("en", ("l2_classifier",))]  # L1 is not requested again; L2's gate is

    # a daemon first started after the partitions were made requests nothing for them
    assert Daemon(defs, dagster_instance).tick() == []


@pytest.mark.slow
def test_l2_waits_for_its_domains_classifier_which_releases_it(dagster_instance, data_root):
    defs = build_definitions(str(data_root))
    daemon = Daemon(defs, dagster_instance)
    assert daemon.tick() == []
    _batch(dagster_instance, data_root, "b1", [SourceEntry("rp", "en", "jsonl", str(RP), (), "rp/c4")])
    assert _run(defs, dagster_instance, ["l0_raw", "l1_filtered"], partition_key("en", "b1"))

    # L1 passed but en has no classifier: the classifier is requested (once), L2 waits
    assert daemon.tick() == [("en", ("l2_classifier",))]
    assert daemon.tick() == []

    # the classifier arrives and releases the waiting partition
    assert _run(defs, dagster_instance, ["l2_classifier"], "en", SMALL_CLASSIFIER)
    assert daemon.tick() == [("b1|en", ("l2_selected",))]
    assert daemon.tick() == []

    # the classifier materialized again (retrained): promotion does not re-run L2; the nightly stale
    # schedule re-scores the partitions if the version changed
    assert _run(defs, dagster_instance, ["l2_classifier"], "en", SMALL_CLASSIFIER)
    assert daemon.tick() == []

    # a second batch: the classifier exists, so L1 -> L2 directly, and it is not trained again
    _batch(dagster_instance, data_root, "b2", [SourceEntry("rp", "en", "jsonl", str(CC), (), "rp/cc")])
    assert _run(defs, dagster_instance, ["l0_raw", "l1_filtered"], partition_key("en", "b2"))
    assert daemon.tick() == [("b2|en", ("l2_selected",))]


def test_l4_index_is_refreshed_once_after_l4(dagster_instance, data_root):
    defs = build_definitions(str(data_root))
    daemon = Daemon(defs, dagster_instance)
    assert daemon.tick() == []
    dagster_instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1", "b2"])
    # L4 materializations as the L4 runs record them (their LLM work is tested in test_l3_l4_dagster)
    for batch in ("b1", "b2"):
        dagster_instance.report_runless_asset_event(
            AssetMaterialization("l4_organized", partition=partition_key_string("en", batch)))
    assert daemon.tick() == [(None, ("l4_index",))]
    assert daemon.tick() == []


def test_stats_sensor_refreshes_once_per_tier_materialization(dagster_instance, data_root):
    defs = build_definitions(str(data_root))
    stats = defs.resolve_sensor_def("tier_stats_sensor")

    def tick(cursor=None):
        with build_sensor_context(instance=dagster_instance, cursor=cursor) as ctx:
            result = stats(ctx)
            return result, ctx.cursor if isinstance(result, SkipReason) else result.cursor

    assert isinstance(tick()[0], SkipReason)
    _batch(dagster_instance, data_root, "b1", [SourceEntry("rp", "en", "jsonl", str(RP), (), "rp")])
    assert _run(defs, dagster_instance, ["l0_raw"], partition_key("en", "b1"))
    result, cursor = tick()
    assert len(result.run_requests) == 1
    assert _run(defs, dagster_instance, ["tier_stats"], None)
    meta = dagster_instance.fetch_materializations(AssetKey("tier_stats"), limit=1).records[0].asset_materialization.metadata
    assert meta["L0_documents"].value == TierStore(data_root).count(PartitionRef("L0", "en", "b1")) == 10
    assert "| L0 | en | b1 |" in meta["tier_summary"].value
    assert isinstance(tick(cursor)[0], SkipReason)


def test_stale_schedule_backfills_partitions_of_an_older_recipe(dagster_instance, data_root, tmp_path,
                                                                monkeypatch):
    from tier_assets.curation.settings import RECIPES_DIR

    defs = build_definitions(str(data_root))
    _batch(dagster_instance, data_root, "b1", [SourceEntry("rp", "en", "jsonl", str(RP), (), "rp")])
    assert _run(defs, dagster_instance, ["l0_raw", "l1_filtered"], partition_key("en", "b1"))
    schedule = defs.resolve_schedule_def("stale_partitions_backfill")

    def evaluate():
        with build_schedule_context(instance=dagster_instance, resources=defs.resources,
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

    assert _run(defs, dagster_instance, ["l1_filtered"], request.partition_key)
    assert not evaluate().run_requests
