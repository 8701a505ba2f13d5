"""The L1 recipe: every L1 setting for one domain, validated before any work starts.

Defaults live in ``recipes/l1.yaml`` (or the file named by ``$TIER_ASSETS_L1_RECIPE``);
a run may override any key. The recipe's
``fingerprint`` covers every setting and the benchmark set, so signatures cached
under one recipe are never reused under another, and L1 partitions made with an
older recipe can be found (staleness).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tier_assets.curation.l1.decontam import DecontamConfig
from tier_assets.curation.l1.dedup import DedupConfig
from tier_assets.curation.l1.langid import LangIdConfig
from tier_assets.curation.l1.pii import PIIConfig
from tier_assets.curation.l1.safety import SafetyConfig, lists_version
from tier_assets.curation.schema import dumps, stable_id
from tier_assets.curation.settings import build_config, domain_settings
from tier_assets.curation.validation import check_at_least_one

SECTIONS = {"filters": None, "langid": LangIdConfig, "pii": PIIConfig, "decontam": DecontamConfig,
            "dedup": DedupConfig, "safety": SafetyConfig}


@dataclass(frozen=True)
class L1Settings:
    domain: str
    filters: dict[str, dict[str, Any]]
    langid: LangIdConfig
    pii: PIIConfig
    decontam: DecontamConfig
    dedup: DedupConfig
    safety: SafetyConfig
    raw: dict[str, Any]
    records_per_batch: int | None = None

    def __post_init__(self) -> None:
        check_at_least_one(self, "records_per_batch", integer=True, optional=True)

    @property
    def fingerprint(self) -> str:
        """Hash of every setting plus the content versions of the benchmark set and the safety lists."""
        from tier_assets.curation.l1.decontam import load_benchmarks

        paths = None if self.decontam.benchmark_paths is None else list(self.decontam.benchmark_paths)
        bench = load_benchmarks(paths, n=self.decontam.n, min_tokens=self.decontam.min_tokens).version
        return stable_id("l1-recipe", self.domain, dumps(self.raw), bench, lists_version(self.safety))


def load_l1_settings(domain: str, overrides: dict[str, Any] | None = None,
                   path: str | Path | None = None) -> L1Settings:
    """Merge defaults, domain settings and ``overrides``; raise ValueError on anything invalid."""
    merged = domain_settings("l1", domain, overrides, path)
    records_per_batch = merged.pop("records_per_batch", None)  # how the runner cuts work, not what it does
    unknown = sorted(set(merged) - set(SECTIONS))
    if unknown:
        raise ValueError(f"L1 recipe: unknown section(s) {unknown}; known: {sorted(SECTIONS)} and records_per_batch")
    from tier_assets.curation.l1.filters import default_filters

    filters = merged.get("filters") or {}
    default_filters(domain, filters)  # validates filter names and values now, before any work
    return L1Settings(
        domain=domain,
        filters=filters,
        langid=build_config(LangIdConfig, "L1 recipe langid", merged.get("langid") or {}),
        pii=build_config(PIIConfig, "L1 recipe pii", merged.get("pii") or {}),
        decontam=build_config(DecontamConfig, "L1 recipe decontam", merged.get("decontam") or {}),
        dedup=build_config(DedupConfig, "L1 recipe dedup", merged.get("dedup") or {}),
        safety=build_config(SafetyConfig, "L1 recipe safety", merged.get("safety") or {}),
        raw=merged,
        records_per_batch=records_per_batch,
    )
