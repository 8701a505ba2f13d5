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

from tier_assets.curation.catalog import build_catalog
from tier_assets.curation.l4.settings import load_l4_settings
from tier_assets.curation.l4.tier import build_index, build_stored_partition, evidence_check
from tier_assets.curation.models.embedder import get_embedder
from tier_assets.curation.stats import markdown_table
from tier_assets.curation.storage import PartitionRef
from tier_assets.defs.config import RecipeOverrides
from tier_assets.defs.registry import split_key, tier_partitions
from tier_assets.defs.resources import LLMResource, TierStoreResource

EVIDENCE_CHECK = "evidence_resolves"


@asset(
    key="l4_organized",
    group_name="tiers",
    partitions_def=tier_partitions,
    deps=["l2_selected", "l3_refined"],
    check_specs=[AssetCheckSpec(EVIDENCE_CHECK, asset="l4_organized", blocking=True,
                                description="every L4 item's evidence pointer resolves to exactly the text it cites")],
    kinds={"parquet", "python"},
    description="L4 organized: facts, definitions and Q&A extracted from L2 + L3 (rules and LLM), each with an "
                "evidence pointer (doc_id + span), verified (span, key terms, LLM entailment), merged and tagged "
                "by topic.",
)
def l4_organized(context: AssetExecutionContext, config: RecipeOverrides, tier_store: TierStoreResource,
                 llm: LLMResource) -> MaterializeResult:
    domain, batch = split_key(context.partition_key)
    l4_config = load_l4_settings(domain, config.parsed())  # invalid values fail here, before any work
    store = tier_store.store()
    model = llm.get() if l4_config.llm_extraction else None
    stats = build_stored_partition(store, domain, batch, model, get_embedder(), l4_config, context.log.info)
    build_catalog(store)
    report = evidence_check(store, domain, batch)
    context.log.info(f"L4 {domain}/{batch}: {stats['kept']} items kept, {stats['rejected']} rejected; evidence "
                     f"check: {report.pointers} pointers, {len(report.problems)} problems")
    return MaterializeResult(
        metadata={
            "docs_in": stats["docs_in"],
            "records_kept": stats["kept"],
            "records_rejected": stats["rejected"],
            "extracted": MetadataValue.json(stats["extracted"]),
            "verified_by_method": MetadataValue.json(stats["verified_by_method"]),
            "items_per_doc": stats["items_per_doc"],
            "merged": stats["merged"],
            "topics": MetadataValue.md(markdown_table([{"topic": t, "items": n} for t, n in
                                                       sorted(stats["topics"].items(), key=lambda kv: -kv[1])])),
            "rejection_reasons": MetadataValue.json(stats["reasons"]),
            "budget_tokens": stats["budget_tokens"],
            "spent_tokens": stats["spent_tokens"],
            "llm_cache": MetadataValue.json(stats["llm_cache"]),
            "path": MetadataValue.path(str(store.partition_path(PartitionRef("L4", domain, batch)))),
        },
        check_results=[AssetCheckResult(
            check_name=EVIDENCE_CHECK, passed=not report.problems, severity=AssetCheckSeverity.ERROR,
            metadata={"items": report.items, "pointers": report.pointers,
                      "problems": MetadataValue.json(report.problems[:50])},
        )],
    )


@asset(
    key="l4_index",
    group_name="tiers",
    deps=["l4_organized"],
    kinds={"faiss"},
    description="All L4 items merged across batches (one item per distinct fact, every evidence pointer kept) in a "
                "FAISS index (GPU when present) that `tier-assets ask` searches.",
)
def l4_index(context: AssetExecutionContext, tier_store: TierStoreResource) -> MaterializeResult:
    index, stats = build_index(tier_store.store(), get_embedder())
    context.log.info(f"L4 index: {stats['items']} items from {stats['items_in']} partition items "
                     f"({stats['merged']} merged across partitions), {index.settings}")
    return MaterializeResult(metadata={
        "items": stats["items"],
        "partition_items": stats["items_in"],
        "merged_across_partitions": stats["merged"],
        "support": MetadataValue.json(stats["support"]),
        "index": MetadataValue.json(stats["index"]),
        "path": MetadataValue.path(stats["path"]),
    })
