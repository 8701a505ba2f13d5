"""Stale partitions: tier partitions made by an older recipe, benchmark set or model.

Each tier records what made it in the ``models`` JSON column (``l1.recipe``,
``l2.classifier_version``, ...; one nested object per tier). A partition is stale when the version it recorded is not
the one the current configuration would use; a scheduled backfill re-runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tier_assets.curation.catalog import connect
from tier_assets.curation.storage import TierStore

# the current version of what made a tier's partitions, per (data root, domain); None = nothing to compare
VersionFn = Callable[[TierStore, str], str | None]


@dataclass(frozen=True)
class Stale:
    tier: str
    domain: str
    batch: str
    key: str
    recorded: str | None
    current: str


def current_l1_version(store: TierStore, domain: str) -> str:
    """The fingerprint of the L1 recipe (settings + benchmark set) a run would use now."""
    from tier_assets.curation.l1.settings import load_l1_settings

    return load_l1_settings(domain).fingerprint


def current_l2_version(store: TierStore, domain: str) -> str | None:
    """The domain's current classifier version (None until one has been trained)."""
    from tier_assets.curation.l2.train import current_version

    return current_version(store.root, domain)


# tier -> (JSON path in the ``models`` column, current version)
VERSIONED: dict[str, tuple[str, VersionFn]] = {
    "L1": ("l1.recipe", current_l1_version),
    "L2": ("l2.classifier_version", current_l2_version),
}


def recorded_versions(store: TierStore, tier: str, key: str) -> dict[tuple[str, str], set[str | None]]:
    """(domain, batch) -> the distinct ``models[key]`` values in the partition (kept and rejected)."""
    con = connect(store)
    try:
        view = tier.lower()
        rows = con.execute(
            f"SELECT domain, batch, json_extract_string(models, '$.{key}') AS v FROM {view} "
            f"UNION SELECT domain, batch, json_extract_string(models, '$.{key}') FROM {view}_rejected"
        ).fetchall()
    finally:
        con.close()
    out: dict[tuple[str, str], set[str | None]] = {}
    for domain, batch, version in rows:
        out.setdefault((domain, batch), set()).add(version)
    return out


def stale_partitions(store: TierStore, tiers: list[str] | None = None) -> list[Stale]:
    """Every partition of ``tiers`` whose recorded version differs from the current one."""
    stale = []
    for tier in tiers or list(VERSIONED):
        key, current_fn = VERSIONED[tier]
        current: dict[str, str | None] = {}
        for (domain, batch), versions in sorted(recorded_versions(store, tier, key).items()):
            if domain not in current:
                current[domain] = current_fn(store, domain)
            want = current[domain]
            if want is not None and versions != {want}:
                recorded = sorted(v for v in versions if v)[:1] or [None]
                stale.append(Stale(tier, domain, batch, key, recorded[0], want))
    return stale
