"""The L1 rule filters of each domain, cheapest and most selective first, as one FilterGroup."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from tier_assets.curation.l1.filters.base import FilterGroup, RuleFilter
from tier_assets.curation.l1.filters.c4 import C4QualityConfig, C4QualityFilter
from tier_assets.curation.l1.filters.chinese import ChineseQualityConfig, ChineseQualityFilter
from tier_assets.curation.l1.filters.code_quality import CodeQualityConfig, CodeQualityFilter
from tier_assets.curation.l1.filters.fineweb import FineWebQualityConfig, FineWebQualityFilter
from tier_assets.curation.l1.filters.gopher_quality import GopherQualityConfig, GopherQualityFilter
from tier_assets.curation.l1.filters.gopher_repetition import GopherRepetitionConfig, GopherRepetitionFilter
from tier_assets.curation.l1.filters.length import LengthConfig, LengthFilter
from tier_assets.curation.l1.math_rules import MathFragmentConfig, MathFragmentFilter
from tier_assets.curation.pipeline import Filter


@dataclass
class _Spec:
    cls: type[RuleFilter]
    config: Any


def _domain_specs(domain: str) -> list[_Spec]:
    """Filters and their per-domain configs, cheapest and most selective first."""
    if domain == "en":
        return [
            _Spec(LengthFilter, LengthConfig()),
            _Spec(GopherQualityFilter, GopherQualityConfig()),
            _Spec(C4QualityFilter, C4QualityConfig()),
            _Spec(FineWebQualityFilter, FineWebQualityConfig()),
            _Spec(GopherRepetitionFilter, GopherRepetitionConfig()),
        ]
    if domain == "math":
        # UltraData-Math's length rules, math's fragment rule, then the web rules that judge math fairly, on the
        # LaTeX-aware view (formulas as words, paragraphs as lines); C4's sentence count is left out (a short
        # definition is one sentence). Their math thresholds are in recipes/l1.yaml; repetition is measured on
        # the raw text, where distinct formulas stay distinct
        return [
            _Spec(LengthFilter, LengthConfig()),
            _Spec(MathFragmentFilter, MathFragmentConfig()),
            _Spec(GopherQualityFilter, GopherQualityConfig(mask_latex=True)),
            _Spec(FineWebQualityFilter, FineWebQualityConfig(mask_latex=True)),
            _Spec(GopherRepetitionFilter, GopherRepetitionConfig()),
        ]
    if domain == "zh":
        return [_Spec(LengthFilter, LengthConfig()), _Spec(ChineseQualityFilter, ChineseQualityConfig())]
    if domain == "code":
        # short source files rarely contain '.' or ',': only the size bounds apply
        return [_Spec(LengthFilter, LengthConfig(short_doc_chars=None)), _Spec(CodeQualityFilter, CodeQualityConfig())]
    raise ValueError(f"unknown domain {domain!r}; expected one of en, zh, math, code")


def default_filters(domain: str, overrides: dict[str, dict[str, Any]] | None = None) -> list[Filter]:
    """The L1 rule filters for ``domain`` as one :class:`FilterGroup` (one tokenization per document).

    ``overrides`` maps a filter name to config fields to change, e.g. ``{"gopher_quality":
    {"min_doc_words": 30}}``; unknown names or fields raise ValueError before any document is touched.
    """
    specs = _domain_specs(domain)
    by_name = {spec.cls.name: spec for spec in specs}
    for filter_name, changes in (overrides or {}).items():
        if filter_name not in by_name:
            raise ValueError(f"unknown filter {filter_name!r} for domain {domain!r}; known: {sorted(by_name)}")
        spec = by_name[filter_name]
        known = {f.name for f in fields(spec.config)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)} for {filter_name!r}; known: {sorted(known)}")
        spec.config = replace(spec.config, **changes)
    return [FilterGroup(f"{domain}_rules", [spec.cls(spec.config) for spec in specs])]
