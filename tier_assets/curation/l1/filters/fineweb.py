"""FineWeb's line-level rules (Penedo et al. 2024), as in DataTrove 0.10."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tier_assets.curation.l1.filters.base import DocView, RuleFilter, Verdict, duplicates, rejection
from tier_assets.curation.l1.filters.tokenizer import TERMINAL_PUNCTUATION
from tier_assets.curation.validation import check_fraction, check_non_negative


@dataclass
class FineWebQualityConfig:
    """FineWeb's line-level rules: terminal punctuation, short lines, duplicated lines, list-like pages.

    ``mask_latex`` (math domain) measures :func:`mask_latex`'s view, whose lines are paragraphs.
    """

    line_punct_thr: float | None = 0.12
    line_punct_exclude_zero: bool = False
    short_line_thr: float | None = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float | None = 0.01
    new_line_ratio: float | None = 0.3
    stop_chars: str = TERMINAL_PUNCTUATION
    mask_latex: bool = False

    def __post_init__(self) -> None:
        check_fraction(self, "line_punct_thr", "short_line_thr", "char_duplicates_ratio", optional=True)
        check_non_negative(self, "short_line_length", "new_line_ratio", optional=True)
        if self.line_punct_thr is not None and not self.stop_chars:
            raise ValueError("FineWebQualityConfig.stop_chars must not be empty when line_punct_thr is set")


class FineWebQualityFilter(RuleFilter):
    """Drops pages made of unpunctuated, short or duplicated lines, or with more lines than words allow."""

    name = "fineweb_quality"

    def __init__(self, config: FineWebQualityConfig | None = None) -> None:
        self.config = config or FineWebQualityConfig()
        self._stop_chars = frozenset(self.config.stop_chars)

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name = self.config, self.name
        if c.mask_latex:
            view = view.masked()
        text = view.text
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return f"{name}:empty", "no non-blank line"
        stop = self._stop_chars
        punct = sum(1 for line in lines if line[-1] in stop) / len(lines)
        signals["line_punct_ratio"] = punct
        if c.line_punct_thr is not None and punct < c.line_punct_thr and not (punct == 0 and c.line_punct_exclude_zero):
            return rejection(name, "line_punct_ratio", "line_punct_ratio", punct, "<", c.line_punct_thr)
        short = sum(1 for line in lines if len(line) <= c.short_line_length) / len(lines)
        signals["short_line_ratio"] = short
        if c.short_line_thr is not None and short > c.short_line_thr:
            return rejection(name, "short_line_ratio", "short_line_ratio", short, ">", c.short_line_thr)
        dup = duplicates(lines)[1] / (len(text) - text.count("\n"))
        signals["char_dup_ratio"] = dup
        if c.char_duplicates_ratio is not None and dup > c.char_duplicates_ratio:
            return rejection(name, "char_dup_ratio", "char_dup_ratio", dup, ">", c.char_duplicates_ratio)
        if c.new_line_ratio is not None:
            ratio = text.count("\n") / len(view.words)
            signals["newline_per_word"] = ratio
            if ratio > c.new_line_ratio:
                return rejection(name, "list_ratio", "newline_per_word", ratio, ">", c.new_line_ratio)
        return None
