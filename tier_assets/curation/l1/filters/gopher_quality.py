"""Gopher's quality rules (Rae et al. 2021, table A1), as in DataTrove 0.10."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tier_assets.curation.l1.filters.base import DocView, RuleFilter, Verdict, rejection
from tier_assets.curation.l1.filters.tokenizer import HAS_ALPHA, IS_WORD, WORD_LEN
from tier_assets.curation.validation import check_fraction, check_non_negative, check_order

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


@dataclass
class GopherQualityConfig:
    """Gopher's quality rules. ``min_alpha_words_ratio`` is DataTrove's ``max_non_alpha_words_ratio``.

    ``mask_latex`` (math domain) measures :func:`mask_latex`'s view of the text.
    """

    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words: tuple[str, ...] = STOP_WORDS
    mask_latex: bool = False

    def __post_init__(self) -> None:
        self.stop_words = tuple(self.stop_words)
        check_non_negative(
            self, "min_doc_words", "max_doc_words", "min_avg_word_length", "max_avg_word_length",
            "max_symbol_word_ratio", "min_stop_words", optional=True,
        )
        check_fraction(
            self, "max_bullet_lines_ratio", "max_ellipsis_lines_ratio", "min_alpha_words_ratio", optional=True
        )
        check_order(self, "min_doc_words", "max_doc_words", optional=True)
        check_order(self, "min_avg_word_length", "max_avg_word_length", optional=True)
        if self.min_stop_words is not None and self.min_stop_words > len(set(self.stop_words)):
            raise ValueError(
                f"GopherQualityConfig.min_stop_words={self.min_stop_words} exceeds the "
                f"{len(set(self.stop_words))} distinct stop_words"
            )


class GopherQualityFilter(RuleFilter):
    """Drops documents whose word statistics are unlike prose (too short/long, symbol-heavy, list-like)."""

    name = "gopher_quality"

    def __init__(self, config: GopherQualityConfig | None = None) -> None:
        self.config = config or GopherQualityConfig()
        self._stop_words = frozenset(self.config.stop_words)

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name = self.config, self.name
        if c.mask_latex:
            view = view.masked()
        text, words = view.text, view.words
        n_words = len(words)
        n_real = sum(map(IS_WORD.__getitem__, words))
        signals["words"] = n_real
        if c.min_doc_words is not None and n_real < c.min_doc_words:
            return rejection(name, "word_count", "words", n_real, "<", c.min_doc_words)
        if c.max_doc_words is not None and n_real > c.max_doc_words:
            return rejection(name, "word_count", "words", n_real, ">", c.max_doc_words)
        if n_real:
            mean_len = sum(map(WORD_LEN.__getitem__, words)) / n_real
            signals["mean_word_length"] = mean_len
            if c.min_avg_word_length is not None and mean_len < c.min_avg_word_length:
                return rejection(name, "mean_word_length", "mean_word_length", mean_len, "<", c.min_avg_word_length)
            if c.max_avg_word_length is not None and mean_len > c.max_avg_word_length:
                return rejection(name, "mean_word_length", "mean_word_length", mean_len, ">", c.max_avg_word_length)
        if c.max_symbol_word_ratio is not None and n_words:
            hash_ratio = text.count("#") / n_words
            if hash_ratio > c.max_symbol_word_ratio:
                return rejection(name, "hash_ratio", "hash_per_word", hash_ratio, ">", c.max_symbol_word_ratio)
            ellipsis_ratio = (text.count("...") + text.count("…")) / n_words
            if ellipsis_ratio > c.max_symbol_word_ratio:
                return rejection(
                    name, "ellipsis_ratio", "ellipsis_per_word", ellipsis_ratio, ">", c.max_symbol_word_ratio
                )
        lines = text.splitlines()
        if lines and c.max_bullet_lines_ratio is not None:
            bullets = sum(1 for s in lines if s.lstrip().startswith(("•", "-"))) / len(lines)
            if bullets > c.max_bullet_lines_ratio:
                return rejection(name, "bullet_lines", "bullet_lines", bullets, ">", c.max_bullet_lines_ratio)
        if lines and c.max_ellipsis_lines_ratio is not None:
            trailing = sum(1 for s in lines if s.rstrip().endswith(("...", "…"))) / len(lines)
            if trailing > c.max_ellipsis_lines_ratio:
                return rejection(name, "ellipsis_lines", "ellipsis_lines", trailing, ">", c.max_ellipsis_lines_ratio)
        if c.min_alpha_words_ratio is not None and n_words:
            alpha = sum(map(HAS_ALPHA.__getitem__, words)) / n_words
            signals["alpha_words_ratio"] = alpha
            if alpha < c.min_alpha_words_ratio:
                return rejection(name, "alpha_words", "alpha_words_ratio", alpha, "<", c.min_alpha_words_ratio)
        if c.min_stop_words is not None:
            n_stop = len(self._stop_words.intersection(words))
            signals["stop_words"] = n_stop
            if n_stop < c.min_stop_words:
                return rejection(name, "stop_words", "stop_words", n_stop, "<", c.min_stop_words)
        return None
