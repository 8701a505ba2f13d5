"""Cheap, language-agnostic text statistics (Gopher / C4-style) used as quality signals.

Why here and not from L1: L2 must work on any L1 partition (and on any labelled
file for evaluation), whatever rules L1 ran with, so it recomputes the few
statistics it needs from the text itself. They cost microseconds per document,
so they can sit next to the embedding in the distilled classifier's features.
"""

from __future__ import annotations

import math
import re

import numpy as np

WORD = re.compile(r"\S+")
# The most frequent English function words (Gopher's "stop word" rule uses a
# subset); their share separates running prose from lists, menus and spam.
_STOP_TEXT = (
    "the be to of and a in that have i it for not on with he as you do at this but his by from they we "
    "say her she or an will my one all would there their what so up out if about who get which go me "
    "is are was were has had been can could should may its our your them than then these those"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
TERMINAL = tuple('.!?"\'。！？」”)')
BULLETS = tuple("-*•·|>#–")

STAT_NAMES = (
    "log_chars", "log_words", "mean_word_len", "alpha_frac", "stop_frac", "end_punct_frac",
    "bullet_frac", "short_line_frac", "log_mean_line", "unique_word_frac", "upper_frac",
    "digit_frac", "symbol_frac", "cjk_frac",
)


def text_stats(text: str) -> dict[str, float]:
    """A fixed set of statistics of ``text`` (names in ``STAT_NAMES``)."""
    words = WORD.findall(text)
    n_words = max(len(words), 1)
    n_chars = max(len(text), 1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    n_lines = max(len(lines), 1)
    lowered = [w.lower().strip(".,;:!?()[]\"'") for w in words]
    return {
        "log_chars": math.log1p(len(text)),
        "log_words": math.log1p(len(words)),
        "mean_word_len": sum(len(w) for w in words) / n_words,
        "alpha_frac": sum(any(c.isalpha() for c in w) for w in words) / n_words,
        "stop_frac": sum(w in STOP_WORDS for w in lowered) / n_words,
        "end_punct_frac": sum(line.endswith(TERMINAL) for line in lines) / n_lines,
        "bullet_frac": sum(line.startswith(BULLETS) for line in lines) / n_lines,
        "short_line_frac": sum(len(line) < 40 for line in lines) / n_lines,
        "log_mean_line": math.log1p(len(text) / n_lines),
        "unique_word_frac": len(set(lowered)) / n_words,
        "upper_frac": sum(c.isupper() for c in text) / n_chars,
        "digit_frac": sum(c.isdigit() for c in text) / n_chars,
        "symbol_frac": sum(c in "|#{}[]<>=/\\@_~^*" for c in text) / n_chars,
        "cjk_frac": len(CJK.findall(text)) / n_chars,
    }


def stats_matrix(texts: list[str], names: tuple[str, ...] = STAT_NAMES) -> np.ndarray:
    """Rows of ``names`` statistics, float32, one row per text."""
    rows = [text_stats(t) for t in texts]
    return np.array([[r[n] for n in names] for r in rows], dtype=np.float32).reshape(len(texts), len(names))
