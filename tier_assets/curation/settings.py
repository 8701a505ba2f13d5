"""Per-domain settings files (``recipes/*.yaml``): defaults, then the domain's section, then run overrides.

Every tier's recipe has the same shape (``defaults:`` and ``domains: {en: ...}``),
so one merge rule serves them all and a launchpad override changes one key
without restating the rest.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from tier_assets.curation.schema import DOMAINS

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"


def merge(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``over`` applied recursively (dicts merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def domain_settings(name: str, domain: str, overrides: dict[str, Any] | None = None,
                    path: str | Path | None = None) -> dict[str, Any]:
    """Merged settings of ``domain`` from ``recipes/{name}.yaml`` (or ``$TIER_ASSETS_{NAME}_RECIPE`` / ``path``)."""
    if domain not in DOMAINS:
        raise ValueError(f"{name} recipe: unknown domain {domain!r}; known: {list(DOMAINS)}")
    env = os.environ.get(f"TIER_ASSETS_{name.upper()}_RECIPE")
    data = yaml.safe_load(Path(path or env or RECIPES_DIR / f"{name}.yaml").read_text()) or {}
    return merge(merge(data.get("defaults", {}), data.get("domains", {}).get(domain, {})), overrides)


def build_config(cls: type, section: str, values: dict[str, Any]) -> Any:
    """``cls(**values)`` with unknown keys and bad values reported as ValueError naming ``section``."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{section}: unknown setting(s) {unknown}; known: {sorted(names)}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"{section}: bad settings {values}: {exc}") from exc
