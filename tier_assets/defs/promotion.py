"""Promotion by declarative automation: a tier partition is requested when the tier before it was
materialized for that partition and that materialization's blocking checks passed.

Why conditions and not sensors, and what each guarantee rests on:
docs/adr/0001-promotion-sensors-vs-automation.md. In short, per asset:

* L1 .. L4: the previous tier was materialized for the partition (by a run that did not also plan this
  tier) since this tier was last requested or materialized; no dependency is missing (for L2 that
  includes ``l2_classifier[domain]``) or in progress; every blocking check of each dependency's latest
  materialization of the partition passed; this tier is not already in progress. One tier per run,
  as before.
* ``l2_classifier[domain]``: missing, an L1 partition of the domain was materialized since it was last
  requested, and at least one L1 partition of the domain passed its checks. Trained once; a retrained
  classifier does not re-run L2 (the nightly stale schedule does).
* ``l4_index``: an L4 partition was materialized since it was last requested, and no L4 run is in progress.

One automation-condition sensor evaluates them in the code server (``use_user_code_server``), because
the per-partition check condition is Python of ours. ``tier_stats`` declares no dependencies (it reads
the catalog), so conditions cannot see what it summarizes; it keeps its refresh sensor.
"""

import warnings
from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    AutomationContext,
    AutomationResult,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    map_asset_specs,
    sensor,
)

from tier_assets.defs.registry import INDEX_ASSET, STATS_ASSET, asset_of, gate_of, promotion_pairs, tier_chain

PROMOTION_SENSOR = "tier_promotion"


def run_checks_passed(instance: DagsterInstance, run_id: str, asset: AssetKey, checks: set[str]) -> bool:
    """Whether ``run_id`` evaluated every one of ``checks`` on ``asset`` and each passed."""
    passed = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.asset_key == asset:
            passed[evaluation.check_name] = evaluation.passed
    return checks <= passed.keys() and all(passed[name] for name in checks)


class BlockingChecksPassed(AutomationCondition[AssetKey]):
    """True for the partitions whose latest materialization's run evaluated every blocking check, all passed.

    For partitioned assets, as every tier and model asset is.

    Dagster's ``check_passed()`` judges a check that has no partitions (ours have none) by its latest
    evaluation across all partitions, so one partition's result would decide for every other one.
    This reads the run of each partition's own latest materialization instead.
    """

    @property
    def name(self) -> str:
        return "latest_materialization_blocking_checks_passed"

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: AutomationContext) -> AutomationResult:
        graph, candidates = context.asset_graph, context.candidate_subset
        blocking = {k.name for k in graph.get(context.key).check_keys if graph.get(k).blocking}
        if not blocking or candidates.is_empty:
            return AutomationResult(context, candidates)
        instance = context.asset_graph_view.instance
        passed = {p for p in candidates.expensively_compute_partition_keys()
                  if _latest_checks_passed(instance, context.key, p, blocking)}
        return AutomationResult(context, candidates.compute_intersection_with_partition_keys(passed))


def _latest_checks_passed(instance: DagsterInstance, key: AssetKey, partition: str, checks: set[str]) -> bool:
    latest = instance.fetch_materializations(AssetRecordsFilter(key, asset_partitions=[partition]), limit=1).records
    return bool(latest) and run_checks_passed(instance, latest[0].run_id, key, checks)


def _materialized(deps: Sequence[str] | None = None) -> AutomationCondition:
    """A dependency (one of ``deps``) was materialized since the last tick, by a run that did not plan this asset."""
    updated = AutomationCondition.any_deps_match(
        AutomationCondition.newly_updated() & ~AutomationCondition.executed_with_root_target())
    return (updated.allow(AssetSelection.assets(*deps)) if deps else updated).with_label(
        f"{' or '.join(deps) if deps else 'a dependency'} materialized")


def _not_in_progress() -> AutomationCondition:
    return ~AutomationCondition.in_progress() & ~AutomationCondition.any_deps_in_progress()


def tier_condition(upstream: str) -> AutomationCondition:
    """Promote from ``upstream``: the partition's upstream was materialized and passed its blocking checks."""
    return (
        _materialized([upstream]).since_last_handled()
        & ~AutomationCondition.any_deps_match(AutomationCondition.missing()).with_label("a dependency is missing")
        & _not_in_progress()
        & AutomationCondition.all_deps_match(BlockingChecksPassed()).with_label("dependencies' blocking checks passed")
    ).with_label(f"promote from {upstream}")


def model_condition() -> AutomationCondition:
    """Train a per-domain model once: missing, and an upstream partition of the domain passed its checks."""
    return (
        AutomationCondition.missing()
        & _materialized().since_last_handled()
        & _not_in_progress()
        & AutomationCondition.any_deps_match(BlockingChecksPassed()).with_label("a dependency passed its checks")
    ).with_label("train once")


def refresh_condition() -> AutomationCondition:
    """Rebuild once after a burst of upstream materializations, when none is running any more."""
    return (_materialized().since_last_handled() & _not_in_progress()).with_label("refresh")


def promotion_conditions(asset_keys: Sequence[str]) -> dict[str, AutomationCondition]:
    """Asset key -> its automation condition, for the tiers, model gates and index present in ``asset_keys``."""
    pairs = promotion_pairs(asset_keys)
    conditions = {down: tier_condition(up) for up, down in pairs}
    conditions |= {gate: model_condition() for _, down in pairs if (gate := gate_of(down)) in asset_keys}
    if INDEX_ASSET in asset_keys and asset_of("L4") in asset_keys:
        conditions[INDEX_ASSET] = refresh_condition()
    return conditions


def with_promotion(assets: Sequence[AssetsDefinition]) -> list[AssetsDefinition]:
    """``assets`` with the promotion conditions attached (the asset modules stay free of automation)."""
    conditions = promotion_conditions([k.to_user_string() for a in assets for k in a.keys])

    def attach(spec: AssetSpec) -> AssetSpec:
        condition = conditions.get(spec.key.to_user_string())
        return spec.replace_attributes(automation_condition=condition) if condition else spec

    return list(map_asset_specs(attach, assets))


def promotion_sensor(asset_keys: Sequence[str]) -> AutomationConditionSensorDefinition:
    """The sensor that evaluates the promotion conditions: in the code server, one run per request."""
    with warnings.catch_warnings():  # use_user_code_server is beta in Dagster 1.13; it is what runs our condition
        warnings.simplefilter("ignore")
        return AutomationConditionSensorDefinition(
            PROMOTION_SENSOR,
            target=AssetSelection.assets(*promotion_conditions(asset_keys)),
            use_user_code_server=True,
            emit_backfills=False,
            minimum_interval_seconds=15,
            default_status=DefaultSensorStatus.RUNNING,
            description="Requests the next tier of each partition whose tier passed its blocking checks, the L2 "
                        "classifier of a domain once, and the L4 index after L4 (automation conditions).",
        )


def refresh_sensor(target: str, watched: Sequence[str], interval_s: int = 30) -> SensorDefinition:
    """Requests one ``target`` refresh per tick in which any of ``watched`` was materialized."""

    @sensor(name=f"{target}_sensor", asset_selection=[AssetKey(target)], minimum_interval_seconds=interval_s,
            default_status=DefaultSensorStatus.RUNNING,
            description=f"Refreshes {target} after materializations of {', '.join(watched)}.")
    def _refresh(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        after = int(context.cursor) if context.cursor else 0
        newest = after
        for key in watched:
            result = context.instance.fetch_materializations(
                AssetRecordsFilter(AssetKey(key), after_storage_id=after), limit=1, ascending=False)
            if result.records:
                newest = max(newest, result.records[0].storage_id)
        if newest == after:
            return SkipReason(f"nothing of {list(watched)} materialized since the last refresh")
        return SensorResult(run_requests=[RunRequest(run_key=f"{target}:{newest}")], cursor=str(newest))

    return _refresh


def build_promotion_sensors(asset_keys: Sequence[str]) -> list[SensorDefinition]:
    """The promotion sensor (when any condition applies) and the tier_stats refresh sensor."""
    sensors: list[SensorDefinition] = [promotion_sensor(asset_keys)] if promotion_conditions(asset_keys) else []
    if STATS_ASSET in asset_keys:
        sensors.append(refresh_sensor(STATS_ASSET, tier_chain(asset_keys)))
    return sensors
