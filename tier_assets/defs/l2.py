"""L2 selected: an LLM annotates seeds, a per-domain classifier is distilled from it, and scores L1."""

import warnings

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
)

from tier_assets.curation.accounting import one_to_one_problems
from tier_assets.curation.l2.settings import load_l2_settings
from tier_assets.curation.l2.tier import run_l2_partition
from tier_assets.curation.l2.train import load_current, train_classifier
from tier_assets.curation.stats import markdown_table
from tier_assets.defs.config import RecipeOverrides
from tier_assets.defs.registry import domain_partitions, split_key
from tier_assets.defs.resources import LLMResource, TierStoreResource
from tier_assets.defs.tier_asset import partition_result, stages_table, tier_asset

ACCOUNTING_CHECK = "records_accounted"
AGREEMENT_CHECK = "agrees_with_annotator"
MIN_HELDOUT_SPEARMAN = 0.3
with warnings.catch_warnings():  # beta in Dagster 1.13, and exactly the mapping meant: domain x batch -> domain
    warnings.simplefilter("ignore")
    BY_DOMAIN = MultiToSingleDimensionPartitionMapping(partition_dimension_name="domain")


@asset(
    key="l2_classifier",
    group_name="models",
    partitions_def=domain_partitions,
    deps=[AssetDep("l1_filtered", partition_mapping=BY_DOMAIN)],
    check_specs=[AssetCheckSpec(AGREEMENT_CHECK, asset="l2_classifier",
                                description=f"held-out seeds: Spearman(classifier, LLM label) >= "
                                            f"{MIN_HELDOUT_SPEARMAN}")],
    kinds={"python", "torch"},
    pool="llm",
    description="Per-domain L2 quality classifier: the LLM annotates a stratified seed sample of L1 (plus reference "
                "text), a ridge model over MiniLM embeddings + text statistics is distilled from it. Versioned by "
                "hash(seed set, annotator, prompt version); a new version makes older L2 partitions stale.",
)
def l2_classifier(context: AssetExecutionContext, config: RecipeOverrides, tier_store: TierStoreResource,
                  llm: LLMResource) -> MaterializeResult:
    domain = context.partition_key
    recipe = load_l2_settings(domain, config.parsed())  # invalid values fail here, before any work
    store = tier_store.store()
    result = train_classifier(store, recipe, llm.get(), progress=context.log.info)
    card = result.classifier.card
    metrics = card["metrics"]
    spearman = metrics.get("heldout_spearman")
    context.log.info(f"L2 classifier {domain}: version {result.classifier.version}, {metrics}")
    return MaterializeResult(
        metadata={
            "classifier_version": result.classifier.version,
            "annotator": MetadataValue.json(card["annotator"]),
            "prompt_version": card["prompt_version"],
            "seeds_in": result.seeds_in,
            "seeds_scored": result.seeds_scored,
            "seed_sources": MetadataValue.json(card["seed_sources"]),
            "unscored_seeds": MetadataValue.json(result.unscored),
            "annotated_now": result.annotated_now,
            "annotation_docs_per_second": round(result.annotated_now / max(result.annotation_seconds, 1e-9), 3),
            "heldout_spearman": spearman if spearman is not None else float("nan"),
            "heldout_auc_ge3": metrics.get("heldout_auc_ge3") or float("nan"),
            "heldout_mae": metrics["heldout_mae"],
            "path": MetadataValue.path(str(result.path)),
        },
        check_results=[AssetCheckResult(
            check_name=AGREEMENT_CHECK, passed=spearman is not None and spearman >= MIN_HELDOUT_SPEARMAN,
            severity=AssetCheckSeverity.WARN, metadata={"metrics": MetadataValue.json(metrics)},
        )],
    )


@tier_asset("L2", ACCOUNTING_CHECK, "L2 kept + rejected = L1 input, every L1 record exactly once",
            "L2 selected: every L1 document scored by the domain's current classifier; the best by threshold or "
            "top fraction are kept, the rest go to L2's rejected set with their score.",
            deps=["l1_filtered", AssetDep("l2_classifier", partition_mapping=BY_DOMAIN)])
def l2_selected(context: AssetExecutionContext, config: RecipeOverrides, tier_store: TierStoreResource) -> MaterializeResult:
    domain, batch = split_key(context.partition_key)
    settings = load_l2_settings(domain, config.parsed())  # invalid values fail here, before any work
    store = tier_store.store()
    classifier = load_current(store.root, domain)
    stats = run_l2_partition(store, settings, batch, classifier, progress=context.log.info)
    rule = f"score >= {settings.threshold}" if settings.threshold is not None else f"top {settings.top_fraction:.0%}"
    return partition_result(
        store, "L2", domain, batch,
        metadata={
            "l1_input": stats.l1_input,
            "records_kept": stats.kept,
            "records_rejected": stats.rejected,
            "retention": round(stats.kept / max(stats.l1_input, 1), 4),
            "selection": rule,
            "classifier_version": classifier.version,
            "judge_injections_penalized": stats.injections,
            "docs_per_second": round(stats.l1_input / max(stats.seconds, 1e-9), 1),
            "stages": stages_table(stats.stages),
            "score_histogram": MetadataValue.md(markdown_table(
                [{"score": k, "documents": v} for k, v in stats.score_histogram.items()])),
        },
        check=ACCOUNTING_CHECK,
        run_check=lambda: (one_to_one_problems(store, "L1", "L2", domain, batch),
                           {"l1_input": stats.l1_input, "kept": stats.kept, "rejected": stats.rejected}),
    )
