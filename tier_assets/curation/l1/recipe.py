"""The L1 recipe: every L1 setting for one domain, validated before any work starts.

Defaults live in ``recipes/l1.yaml`` (or the file named by ``$TIER_ASSETS_L1_RECIPE``);
a run may override any key. The recipe's
``fingerprint`` covers every setting and the benchmark set, so signatures cached
under one recipe are never reused under another, and L1 partitions made with an
older recipe can be found (staleness).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tier_assets.curation.l1.decontam import DecontamConfig
from tier_assets.curation.l1.dedup import DedupConfig
from tier_assets.curation.l1.langid import LangIdConfig
from tier_assets.curation.l1.pii import PIIConfig
from tier_assets.curation.schema import DOMAINS, dumps, stable_id

DEFAULT_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "l1.yaml"
SECTIONS = {"filters": None, "langid": LangIdConfig, "pii": PIIConfig, "decontam": DecontamConfig,
            "dedup": DedupConfig}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _build(cls: type, section: str, values: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"L1 recipe: unknown {section} setting(s) {unknown}; known: {sorted(names)}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"L1 recipe: bad {section} settings {values}: {exc}") from exc


@dataclass(frozen=True)
class L1Recipe:
    domain: str
    filters: dict[str, dict[str, Any]]
    langid: LangIdConfig
    pii: PIIConfig
    decontam: DecontamConfig
    dedup: DedupConfig
    raw: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        """Hash of every setting plus the benchmark set's content version."""
        from tier_assets.curation.l1.decontam import load_benchmarks

        paths = None if self.decontam.benchmark_paths is None else list(self.decontam.benchmark_paths)
        bench = load_benchmarks(paths, n=self.decontam.n, min_tokens=self.decontam.min_tokens).version
        return stable_id("l1-recipe", self.domain, dumps(self.raw), bench)


def load_l1_recipe(domain: str, overrides: dict[str, Any] | None = None,
                   path: str | Path | None = None) -> L1Recipe:
    """Merge defaults, domain settings and ``overrides``; raise ValueError on anything invalid."""
    if domain not in DOMAINS:
        raise ValueError(f"L1 recipe: unknown domain {domain!r}")
    data = yaml.safe_load(Path(path or os.environ.get("TIER_ASSETS_L1_RECIPE") or DEFAULT_RECIPE).read_text()) or {}
    merged = _merge(_merge(data.get("defaults", {}), data.get("domains", {}).get(domain, {})), overrides or {})
    unknown = sorted(set(merged) - set(SECTIONS))
    if unknown:
        raise ValueError(f"L1 recipe: unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
    from tier_assets.curation.l1.filters import default_filters

    filters = merged.get("filters") or {}
    default_filters(domain, filters)  # validates filter names and values now, before any work
    return L1Recipe(
        domain=domain,
        filters=filters,
        langid=_build(LangIdConfig, "langid", merged.get("langid") or {}),
        pii=_build(PIIConfig, "pii", merged.get("pii") or {}),
        decontam=_build(DecontamConfig, "decontam", merged.get("decontam") or {}),
        dedup=_build(DedupConfig, "dedup", merged.get("dedup") or {}),
        raw=merged,
    )
