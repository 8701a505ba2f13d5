"""L1 filtered: cleaned, rule-filtered, language-checked, decontaminated, deduplicated text."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from tier_assets.curation.accounting import one_to_one_problems
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.l1.tier import run_l1_partition
from tier_assets.curation.pipeline import Models
from tier_assets.curation.stats import markdown_table
from tier_assets.defs.config import RecipeOverrides
from tier_assets.defs.registry import split_key
from tier_assets.defs.resources import EmbedderResource, TierStoreResource
from tier_assets.defs.tier_asset import partition_result, stages_table, tier_asset

ACCOUNTING_CHECK = "records_accounted"


@tier_asset("L1", ACCOUNTING_CHECK, "L1 kept + rejected = L0 input, every L0 record exactly once",
            "L1 filtered: mappers, rule filters, language id, decontamination, PII redaction, "
            "exact + MinHash + semantic dedup across batches.", deps=["l0_raw"])
def l1_filtered(context: AssetExecutionContext, config: RecipeOverrides, tier_store: TierStoreResource,
                embedder: EmbedderResource) -> MaterializeResult:
    domain, batch = split_key(context.partition_key)
    store = tier_store.store()
    settings = load_l1_settings(domain, config.parsed())  # invalid values fail here, before any work
    context.log.info(f"L1 {domain}/{batch}: recipe {settings.fingerprint}")
    models = Models(embedder=embedder.get() if settings.dedup.semantic else None)
    _, stats = run_l1_partition(store, settings, batch, models, progress=context.log.info)
    reasons = [{"stage:reason": k, "documents": v} for k, v in sorted(stats.reasons.items(), key=lambda kv: -kv[1])]
    return partition_result(
        store, "L1", domain, batch,
        metadata={
            "l0_input": stats.l0_input,
            "records_kept": stats.kept,
            "records_rejected": stats.rejected,
            "retention": round(stats.kept / max(stats.l0_input, 1), 4),
            "docs_per_second": round(stats.l0_input / max(stats.seconds, 1e-9), 1),
            "recipe_fingerprint": settings.fingerprint,
            "stages": stages_table(stats.stages),
            "rejection_reasons": MetadataValue.md(markdown_table(reasons)),
            "mappers_changed": MetadataValue.json(stats.mappers_changed),
        },
        check=ACCOUNTING_CHECK,
        run_check=lambda: (one_to_one_problems(store, "L0", "L1", domain, batch),
                           {"l0_input": stats.l0_input, "kept": stats.kept, "rejected": stats.rejected}),
    )
