"""L3 settings: what one L3 run depends on, from ``recipes/l3.yaml`` (defaults, then the domain) plus overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tier_assets.curation.l3.prompts import DEFAULT_FORMATS, FORMATS
from tier_assets.curation.settings import build_config, domain_settings
from tier_assets.curation.validation import (
    check_at_least_one,
    check_fraction,
    check_ngram_guard,
    check_non_negative,
    check_order,
    check_positive_fraction,
)

DEFAULT_MIN_SIMILARITY = {"rewrite": 0.7, "qa": 0.5, "dialogue": 0.6, "knowledge": 0.45, "code_explain": 0.35,
                          "code_document": 0.8}


@dataclass(frozen=True)
class L3Settings:
    """Everything one L3 run depends on; invalid values raise ``ValueError`` before any LLM call.

    ``formats`` overrides ``DEFAULT_FORMATS`` per domain. ``budget_tokens`` pays
    for every LLM call of the partition (generation in + out, judge prompts).
    ``max_new_tokens`` is the longest output asked for; near the end of the budget
    it is capped by what is left, down to ``min_new_tokens``, below which the run
    stops. ``min_similarity`` (per format) and ``min_faithfulness`` (the judge's
    calibrated P(Yes)) are the verification thresholds.
    """

    budget_tokens: int = 20_000
    formats: Mapping[str, Sequence[str]] = field(default_factory=dict)
    max_docs: int | None = None
    min_score: float | None = None
    max_source_chars: int = 1200
    min_source_chars: int = 200
    max_new_tokens: int = 384
    min_new_tokens: int = 32
    batch_size: int = 4
    temperature: float = 0.0
    no_repeat_ngram: int = 6
    min_similarity: Mapping[str, float] = field(default_factory=dict)
    copy_threshold: float = 0.8
    judge: bool = True
    judge_calibrated: bool = True
    min_faithfulness: float = 0.5
    records_per_batch: int | None = None

    def __post_init__(self) -> None:
        check_non_negative(self, "budget_tokens", "min_source_chars", "temperature")
        check_ngram_guard(self, "no_repeat_ngram")
        check_non_negative(self, "max_docs", optional=True)
        check_at_least_one(self, "min_new_tokens", "batch_size")
        check_at_least_one(self, "records_per_batch", integer=True, optional=True)
        check_order(self, "min_new_tokens", "max_new_tokens")
        check_order(self, "min_source_chars", "max_source_chars")
        check_positive_fraction(self, "copy_threshold")
        check_fraction(self, "min_faithfulness")
        for domain, names in self.formats.items():
            if isinstance(names, str):
                raise ValueError(f"formats[{domain!r}] must be a list of formats, not a string")
        formats = {**DEFAULT_FORMATS, **{d: tuple(f) for d, f in self.formats.items()}}
        for domain, names in formats.items():
            unknown = sorted(set(names) - set(FORMATS))
            if unknown:
                raise ValueError(f"formats[{domain!r}]: unknown format(s) {unknown}; known: {sorted(FORMATS)}")
        object.__setattr__(self, "formats", formats)
        sims = {**DEFAULT_MIN_SIMILARITY, **self.min_similarity}
        unknown = sorted(set(sims) - set(FORMATS))
        if unknown:
            raise ValueError(f"min_similarity: unknown format(s) {unknown}")
        for name, value in sims.items():
            if not -1 <= value <= 1:
                raise ValueError(f"L3Settings.min_similarity[{name!r}] must be a cosine similarity in [-1, 1], "
                                 f"got {value!r}")
        object.__setattr__(self, "min_similarity", sims)

    def formats_for(self, domain: str) -> tuple[str, ...]:
        return tuple(self.formats.get(domain, DEFAULT_FORMATS["en"]))


def load_l3_settings(domain: str, overrides: dict[str, Any] | None = None) -> L3Settings:
    """``recipes/l3.yaml`` (defaults, then the domain) plus ``overrides``, validated before any LLM call."""
    return build_config(L3Settings, "L3 settings", domain_settings("l3", domain, overrides))
