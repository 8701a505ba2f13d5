"""L4 organized: verifiable knowledge items with evidence pointers, and the FAISS index over all of L4."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from tier_assets.curation.l4.settings import load_l4_settings
from tier_assets.curation.l4.tier import build_index, build_stored_partition, conflict_check, evidence_check
from tier_assets.curation.stats import markdown_table
from tier_assets.defs.config import RecipeOverrides
from tier_assets.defs.registry import asset_of, split_key, tier_partitions
from tier_assets.defs.resources import EmbedderResource, LLMResource, TierStoreResource
from tier_assets.defs.tier_asset import partition_result, stages_table

EVIDENCE_CHECK = "evidence_resolves"
CONFLICT_CHECK = "conflicts_linked"


@asset(
    key=asset_of("L4"),
    group_name="tiers",
    partitions_def=tier_partitions,
    deps=["l2_selected", "l3_refined"],
    check_specs=[AssetCheckSpec(EVIDENCE_CHECK, asset=asset_of("L4"), blocking=True,
                                description="every L4 item's evidence pointer resolves to exactly the text it cites "
                                            "(and its source has not changed since extraction)"),
                 AssetCheckSpec(CONFLICT_CHECK, asset=asset_of("L4"), blocking=True,
                                description="no kept L4 item conflicts with another kept item without a "
                                            "conflicts_with link")],
    kinds={"parquet", "python"},
    description="L4 organized: facts, definitions and Q&A extracted from L2 + L3 (rules and LLM), each with an "
                "evidence pointer (doc_id + span), verified (span, key terms, LLM entailment), merged, tagged "
                "by topic, and conflicting items linked and resolved.",
    pool="llm",
)
def l4_organized(context: AssetExecutionContext, config: RecipeOverrides, tier_store: TierStoreResource,
                 llm: LLMResource, embedder: EmbedderResource) -> MaterializeResult:
    domain, batch = split_key(context.partition_key)
    settings = load_l4_settings(domain, config.parsed())  # invalid values fail here, before any work
    store = tier_store.store()
    model = llm.get() if settings.llm_extraction or settings.knowledge_judge else None
    stats = build_stored_partition(store, domain, batch, model, embedder.get(), settings, context.log.info)

    def check_evidence() -> tuple[list[str], dict[str, int]]:
        report = evidence_check(store, domain, batch)
        context.log.info(f"L4 {domain}/{batch}: {stats.kept} items kept, {stats.rejected} rejected; evidence "
                         f"check: {report.pointers} pointers, {len(report.problems)} problems")
        return report.problems, {"items": report.items, "pointers": report.pointers}

    result = partition_result(
        store, "L4", domain, batch,
        metadata={
            "docs_in": stats.docs_in,
            "records_kept": stats.kept,
            "records_rejected": stats.rejected,
            "extracted": MetadataValue.json(stats.extracted),
            "verified_by_method": MetadataValue.json(stats.verified_by_method),
            "items_per_doc": stats.items_per_doc,
            "merged": stats.merged,
            "stages": stages_table(stats.stages),
            "topics": MetadataValue.md(markdown_table([{"topic": t, "items": n} for t, n in
                                                       sorted(stats.topics.items(), key=lambda kv: -kv[1])])),
            "rejection_reasons": MetadataValue.json(stats.reasons),
            "consistency": MetadataValue.json(stats.consistency),
            "budget_tokens": stats.budget_tokens,
            "spent_tokens": stats.spent_tokens,
            "llm_cache": MetadataValue.json(stats.llm_cache),
        },
        check=EVIDENCE_CHECK, run_check=check_evidence,
    )
    items, conflicts = conflict_check(store, domain, batch)
    return MaterializeResult(metadata=result.metadata, check_results=[*(result.check_results or []), AssetCheckResult(
        check_name=CONFLICT_CHECK, passed=not conflicts, severity=AssetCheckSeverity.ERROR,
        metadata={"items": items, "problems": MetadataValue.json(conflicts[:50])})])


@asset(
    key="l4_index",
    group_name="tiers",
    deps=["l4_organized"],
    kinds={"faiss"},
    description="All L4 items merged across batches (one item per distinct fact, every evidence pointer kept) in a "
                "FAISS index (GPU when present) that `tier-assets ask` searches.",
)
def l4_index(context: AssetExecutionContext, tier_store: TierStoreResource,
             embedder: EmbedderResource) -> MaterializeResult:
    index, stats = build_index(tier_store.store(), embedder.get())
    context.log.info(f"L4 index: {stats['items']} items from {stats['items_in']} partition items "
                     f"({stats['merged']} merged across partitions), {index.settings}")
    return MaterializeResult(metadata={
        "items": stats["items"],
        "partition_items": stats["items_in"],
        "merged_across_partitions": stats["merged"],
        "stale_evidence": stats["stale_evidence"],
        "conflicts_left_out": stats["l4_conflict"],
        "support": MetadataValue.json(stats["support"]),
        "index": MetadataValue.json(stats["index"]),
        "path": MetadataValue.path(stats["path"]),
    })
