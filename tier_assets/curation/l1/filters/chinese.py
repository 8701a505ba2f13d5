"""Chinese web text rules, counted in characters because Chinese has no spaces between words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tier_assets.curation.l1.filters.base import DocView, RuleFilter, Verdict, duplicates, rejection
from tier_assets.curation.validation import (
    check_at_least_one,
    check_fraction,
    check_non_negative,
    check_order,
)

_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U0003134f]")
_ZH_PUNCT = re.compile("[，。！？；：、“”‘’（）《》【】「」『』…—·～,.!?;:'\"()\\[\\]]")


@dataclass
class ChineseQualityConfig:
    """Character-based rules for Chinese web text; the duplicate-line thresholds are Gopher's, the others are
    set loose on purpose (docs/decisions.md, "L1 rule filters")."""

    min_chars: int | None = 50
    min_cjk_ratio: float | None = 0.3
    min_punct_ratio: float | None = 0.01
    max_punct_ratio: float | None = 0.3
    dup_line_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    char_ngram: int = 10
    max_dup_char_ngram_frac: float | None = 0.3

    def __post_init__(self) -> None:
        check_non_negative(self, "min_chars", optional=True)
        check_fraction(self, "min_cjk_ratio", "min_punct_ratio", "max_punct_ratio", "dup_line_frac",
                       "dup_line_char_frac", "max_dup_char_ngram_frac", optional=True)
        check_order(self, "min_punct_ratio", "max_punct_ratio", optional=True)
        check_at_least_one(self, "char_ngram")


class ChineseQualityFilter(RuleFilter):
    """Drops Chinese pages that are too short, mostly not Chinese, unpunctuated lists, or repetitive."""

    name = "zh_quality"

    def __init__(self, config: ChineseQualityConfig | None = None) -> None:
        self.config = config or ChineseQualityConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name = self.config, self.name
        compact = "".join(view.text.split())
        n = len(compact)
        signals["chars"] = n
        if c.min_chars is not None and n < c.min_chars:
            return rejection(name, "char_count", "chars", n, "<", c.min_chars)
        if not n:
            return f"{name}:char_count", "no visible character"
        cjk = (n - len(_CJK.sub("", compact))) / n
        signals["cjk_ratio"] = cjk
        if c.min_cjk_ratio is not None and cjk < c.min_cjk_ratio:
            return rejection(name, "cjk_ratio", "cjk_ratio", cjk, "<", c.min_cjk_ratio)
        punct = (n - len(_ZH_PUNCT.sub("", compact))) / n
        signals["punct_ratio"] = punct
        if c.min_punct_ratio is not None and punct < c.min_punct_ratio:
            return rejection(name, "punct_ratio", "punct_ratio", punct, "<", c.min_punct_ratio)
        if c.max_punct_ratio is not None and punct > c.max_punct_ratio:
            return rejection(name, "punct_ratio", "punct_ratio", punct, ">", c.max_punct_ratio)
        lines = [s for s in (line.strip() for line in view.text.split("\n")) if s]
        dups, dup_chars = duplicates(lines)
        signals["dup_line_frac"] = dups / len(lines)
        if c.dup_line_frac is not None and dups / len(lines) > c.dup_line_frac:
            return rejection(name, "dup_line_frac", "dup_line_frac", dups / len(lines), ">", c.dup_line_frac)
        if c.dup_line_char_frac is not None and dup_chars / n > c.dup_line_char_frac:
            return rejection(name, "dup_line_char_frac", "dup_line_char_frac", dup_chars / n, ">",
                              c.dup_line_char_frac)
        if c.max_dup_char_ngram_frac is not None and n >= c.char_ngram:
            k = c.char_ngram
            total = n - k + 1
            distinct = len(set(map(compact.__getitem__, map(slice, range(total), range(k, n + 1)))))
            frac = 1 - distinct / total
            signals[f"dup_char_{k}_gram_frac"] = frac
            if frac > c.max_dup_char_ngram_frac:
                return rejection(name, f"dup_char_{k}_gram", f"dup_char_{k}_gram_frac", frac, ">",
                                  c.max_dup_char_ngram_frac)
        return None
