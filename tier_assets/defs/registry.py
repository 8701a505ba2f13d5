"""The one table of tiers: tier <-> asset <-> next tier, the model gates, and partition keys.

Every tier asset is partitioned the same way, domain (static) x batch (dynamic); the
per-domain model assets (the L2 classifier) by domain only. Sensors, schedules, the
runner and the exports read the chain from here instead of keeping their own lists,
and partition keys are built and split only here.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import (
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from tier_assets.curation.schema import DOMAINS, TIERS

BATCH_PARTITIONS_NAME = "batch"
domain_partitions = StaticPartitionsDefinition(list(DOMAINS))
batch_partitions = DynamicPartitionsDefinition(name=BATCH_PARTITIONS_NAME)
tier_partitions = MultiPartitionsDefinition({"domain": domain_partitions, "batch": batch_partitions})


@dataclass(frozen=True)
class TierAsset:
    """A tier, the asset that materializes it, and the per-domain model asset it waits for (if any)."""

    tier: str
    asset: str
    gate: str | None = None


TIER_ASSETS = (
    TierAsset("L0", "l0_raw"),
    TierAsset("L1", "l1_filtered"),
    TierAsset("L2", "l2_selected", gate="l2_classifier"),
    TierAsset("L3", "l3_refined"),
    TierAsset("L4", "l4_organized"),
)
assert tuple(t.tier for t in TIER_ASSETS) == TIERS
MODEL_ASSETS = ("l2_classifier",)
INDEX_ASSET = "l4_index"
STATS_ASSET = "tier_stats"
# training stage -> the tiers its export reads
EXPORT_TIERS = {"pretrain": ("L1", "L2"), "decay": ("L2", "L3"), "sft": ("L3", "L4"), "rag": ("L4",)}
_BY_TIER = {t.tier: t for t in TIER_ASSETS}
_BY_ASSET = {t.asset: t for t in TIER_ASSETS}


def asset_of(tier: str) -> str:
    """The asset key of ``tier`` ("L2" -> "l2_selected")."""
    try:
        return _BY_TIER[tier].asset
    except KeyError:
        raise ValueError(f"unknown tier {tier!r}; known: {list(_BY_TIER)}") from None


def tier_of(asset: str) -> str | None:
    """The tier an asset materializes, or None for model, index, stats and export assets."""
    entry = _BY_ASSET.get(asset)
    return entry.tier if entry else None


def gate_of(asset: str) -> str | None:
    """The per-domain model asset ``asset`` needs before it can run."""
    entry = _BY_ASSET.get(asset)
    return entry.gate if entry else None


def tier_chain(present: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The tier assets in order, limited to ``present`` when given."""
    return [t.asset for t in TIER_ASSETS if present is None or t.asset in present]


def promotion_pairs(present: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """(upstream, downstream) asset pairs of consecutive tiers that are both in ``present``."""
    chain = tier_chain(present)
    return list(zip(chain, chain[1:], strict=False))


def export_deps(stage: str, present: list[str] | tuple[str, ...]) -> list[str]:
    """The assets an export stage reads (its tiers, and the index for RAG) among ``present``."""
    deps = [asset_of(t) for t in EXPORT_TIERS[stage]] + ([INDEX_ASSET] if stage == "rag" else [])
    return [d for d in deps if d in present]


def partition_key(domain: str, batch: str) -> MultiPartitionKey:
    return MultiPartitionKey({"domain": domain, "batch": batch})


def partition_key_string(domain: str, batch: str) -> str:
    """The key as Dagster prints and stores it (``batch|domain``), for run keys and record filters."""
    return str(partition_key(domain, batch))


def split_key(key: str | MultiPartitionKey) -> tuple[str, str]:
    """(domain, batch) of a partition key, from a MultiPartitionKey or its ``batch|domain`` string."""
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
    else:
        batch, domain = str(key).split("|", 1)
        dims = {"domain": domain, "batch": batch}
    return dims["domain"], dims["batch"]
