"""L3 refined: the best L2 documents rewritten and synthesized by the LLM under a token budget, verified."""

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
from tier_assets.curation.l3.settings import load_l3_settings
from tier_assets.curation.l3.tier import refine_stored_partition
from tier_assets.curation.models.embedder import get_embedder
from tier_assets.curation.stats import markdown_table
from tier_assets.curation.storage import PartitionRef
from tier_assets.defs.config import RecipeOverrides
from tier_assets.defs.registry import split_key, tier_partitions
from tier_assets.defs.resources import LLMResource, TierStoreResource

BUDGET_CHECK = "budget_held_and_outputs_accounted"


@asset(
    key="l3_refined",
    group_name="tiers",
    partitions_def=tier_partitions,
    deps=["l2_selected"],
    check_specs=[AssetCheckSpec(BUDGET_CHECK, asset="l3_refined", blocking=True,
                                description="tokens spent <= budget; kept + rejected on disk = outputs attempted")],
    kinds={"parquet", "python"},
    description="L3 refined: rewrites, graded Q&A, dialogues, math knowledge points + exercises, code explanations "
                "from the best L2 documents under a token budget; each output parsed and verified against its "
                "source (similarity, numbers/formulas/entities, LLM faithfulness); failures kept in L3 rejected.",
)
def l3_refined(context: AssetExecutionContext, config: RecipeOverrides, tier_store: TierStoreResource,
               llm: LLMResource) -> MaterializeResult:
    domain, batch = split_key(context.partition_key)
    l3_config = load_l3_settings(domain, config.parsed())  # invalid values fail here, before any LLM call
    store = tier_store.store()
    stats = refine_stored_partition(store, domain, batch, llm.get(), get_embedder(), l3_config, context.log.info)
    build_catalog(store)
    ref = PartitionRef("L3", domain, batch)
    on_disk = (store.count(ref), store.count(ref, "rejected"))
    problems = []
    if stats["spent_tokens"] > stats["budget_tokens"]:
        problems.append(f"spent {stats['spent_tokens']} tokens of a {stats['budget_tokens']} budget")
    if on_disk != (stats["kept"], stats["rejected"]):
        problems.append(f"on disk kept/rejected {on_disk} != produced {(stats['kept'], stats['rejected'])}")
    formats = [{"format": f, **c} for f, c in stats["per_format"].items()]
    return MaterializeResult(
        metadata={
            "l2_input": stats["docs_in"],
            "docs_refined": stats["docs_refined"],
            "docs_not_refined": MetadataValue.json(stats["docs_not_refined"]),
            "outputs": stats["outputs"],
            "records_kept": stats["kept"],
            "records_rejected": stats["rejected"],
            "budget_tokens": stats["budget_tokens"],
            "spent_tokens": stats["spent_tokens"],
            "budget_exhausted": stats["budget_exhausted"],
            "tokens_out": stats["tokens_out"],
            "per_format": MetadataValue.md(markdown_table(formats)),
            "rejection_reasons": MetadataValue.json(stats["reasons"]),
            "llm": MetadataValue.json(stats["llm"]),
            "prompt_version": stats["prompt_version"],
            "llm_cache": MetadataValue.json(stats["llm_cache"]),
            "path": MetadataValue.path(str(store.partition_path(ref))),
        },
        check_results=[AssetCheckResult(
            check_name=BUDGET_CHECK, passed=not problems, severity=AssetCheckSeverity.ERROR,
            metadata={"spent_tokens": stats["spent_tokens"], "budget_tokens": stats["budget_tokens"],
                      "problems": MetadataValue.json(problems)},
        )],
    )
