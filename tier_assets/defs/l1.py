"""L1 filtered: cleaned, rule-filtered, language-checked, decontaminated, deduplicated text."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from tier_assets.curation.accounting import one_to_one_problems
from tier_assets.curation.catalog import build_catalog
from tier_assets.curation.l1.process import process_l1_partition
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.stats import markdown_table
from tier_assets.curation.storage import PartitionRef
from tier_assets.defs.config import RecipeOverrides
from tier_assets.defs.registry import split_key, tier_partitions
from tier_assets.defs.resources import TierStoreResource

ACCOUNTING_CHECK = "records_accounted"


@asset(
    key="l1_filtered",
    group_name="tiers",
    partitions_def=tier_partitions,
    deps=["l0_raw"],
    check_specs=[AssetCheckSpec(ACCOUNTING_CHECK, asset="l1_filtered", blocking=True,
                                description="L1 kept + rejected = L0 input, every L0 record exactly once")],
    kinds={"parquet", "python"},
    description="L1 filtered: mappers, rule filters, language id, decontamination, PII redaction, "
                "exact + MinHash + semantic dedup across batches.",
)
def l1_filtered(context: AssetExecutionContext, config: RecipeOverrides, tier_store: TierStoreResource) -> MaterializeResult:
    domain, batch = split_key(context.partition_key)
    store = tier_store.store()
    recipe = load_l1_settings(domain, config.parsed())  # invalid values fail here, before any work
    context.log.info(f"L1 {domain}/{batch}: recipe {recipe.fingerprint}")
    _, stats = process_l1_partition(store, recipe, batch, progress=context.log.info)
    build_catalog(store)
    problems = one_to_one_problems(store, "L0", "L1", domain, batch)
    steps = [{"step": k, **v} for k, v in stats.steps.items()]
    reasons = [{"stage:reason": k, "documents": v} for k, v in sorted(stats.reasons.items(), key=lambda kv: -kv[1])]
    return MaterializeResult(
        metadata={
            "l0_input": stats.l0_input,
            "records_kept": stats.kept,
            "records_rejected": stats.rejected,
            "retention": round(stats.kept / max(stats.l0_input, 1), 4),
            "docs_per_second": round(stats.l0_input / max(stats.seconds, 1e-9), 1),
            "recipe_fingerprint": recipe.fingerprint,
            "steps": MetadataValue.md(markdown_table(steps)),
            "rejection_reasons": MetadataValue.md(markdown_table(reasons)),
            "mappers_changed": MetadataValue.json(stats.mappers_changed),
            "path": MetadataValue.path(str(store.partition_path(PartitionRef("L1", domain, batch)))),
        },
        check_results=[AssetCheckResult(
            check_name=ACCOUNTING_CHECK, passed=not problems, severity=AssetCheckSeverity.ERROR,
            metadata={"l0_input": stats.l0_input, "kept": stats.kept, "rejected": stats.rejected,
                      "problems": MetadataValue.json(problems)},
        )],
    )
