"""Gopher's repetition rules (Rae et al. 2021), as in DataTrove 0.10."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import count
from typing import Any

import numpy as np

from tier_assets.curation.l1.filters.base import DocView, RuleFilter, Verdict, duplicates, rejection
from tier_assets.curation.l1.filters.tokenizer import TOKEN_MEMO_LIMIT, Memo
from tier_assets.curation.validation import check_fraction

_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAKS = re.compile(r"\n+")


_U64 = (1 << 64) - 1
_BASE = 0x100000001B3  # multiplier of the polynomial string hash below


def _string_hash(token: str) -> int:
    h = 0
    for ch in token:
        h = (h * _BASE + ord(ch)) & _U64
    return h


_TOKEN_HASH = Memo(_string_hash, TOKEN_MEMO_LIMIT)


class _WordNgrams:
    """Word n-grams of one document as 64-bit hashes, for Gopher's n-gram repetition rules.

    Hashing with numpy instead of building strings keeps the per-word work in C. Gopher's top n-grams are
    compared as word sequences, its repeated n-grams as concatenated strings (as DataTrove joins them), so
    each has its own hash; distinct n-grams could share one only by a 64-bit collision.
    """

    _MUL = np.uint64(0x9E3779B97F4A7C15)
    _SHIFT = np.uint64(29)

    def __init__(self, words: list[str]) -> None:
        n = len(words)
        first_seen: dict[str, int] = {}
        ids = np.fromiter(map(first_seen.setdefault, words, count()), dtype=np.uint64, count=n)
        self._seq = {1: ids}
        self._text = {1: np.fromiter(map(_TOKEN_HASH.__getitem__, words), dtype=np.uint64, count=n)}
        lengths = np.fromiter(map(len, words), dtype=np.uint64, count=n)
        self._shift = np.power(np.uint64(_BASE), lengths)  # B^len(word), wrapping mod 2^64 like the hash
        self._cum = np.concatenate(([0], np.cumsum(lengths.astype(np.int64)))).tolist()

    def _sequence_hashes(self, n: int) -> np.ndarray:
        """Hash of the word sequence starting at each position (mixing, so word order matters)."""
        k = max(m for m in self._seq if m <= n)
        h, ids = self._seq[k], self._seq[1]
        while k < n:
            h = ((h[:-1] ^ (h[:-1] >> self._SHIFT)) * self._MUL) + ids[k:]
            k += 1
            self._seq[k] = h
        return h

    def _text_hashes(self, n: int) -> np.ndarray:
        """Polynomial hash of the n words concatenated, at each position: H(a + b) = H(a) * B^len(b) + H(b)."""
        k = max(m for m in self._text if m <= n)
        h, single = self._text[k], self._text[1]
        while k < n:
            h = h[:-1] * self._shift[k:] + single[k:]
            k += 1
            self._text[k] = h
        return h

    def top_chars(self, n: int) -> int:
        """Characters covered by the most frequent n-gram (joined with spaces) times its count; on ties the
        n-gram seen first wins, as with ``Counter.most_common``."""
        _, first, counts = np.unique(self._sequence_hashes(n), return_index=True, return_counts=True)
        top = int(counts.max())
        pos = int(first[counts == top].min())
        return (self._cum[pos + n] - self._cum[pos] + n - 1) * top

    def repeated_chars(self, n: int) -> int:
        """Characters in repeated n-grams, scanning left to right and jumping past each repeat (Gopher).

        Only n-grams occurring more than once can be repeats, so the scan visits just those positions: the
        positions in between would enter the seen set without ever being looked up again.
        """
        _, groups, counts = np.unique(self._text_hashes(n), return_inverse=True, return_counts=True)
        if len(counts) == len(groups):
            return 0
        positions = np.flatnonzero(counts[groups] > 1)
        cum, seen, repeated, next_free = self._cum, set(), 0, 0
        for pos, group in zip(positions.tolist(), groups[positions].tolist(), strict=True):
            if pos < next_free:
                continue
            if group in seen:
                repeated += cum[pos + n] - cum[pos]
                next_free = pos + n
            else:
                seen.add(group)
                next_free = pos + 1
        return repeated


def _check_ngram_rules(config: object, name: str) -> tuple[tuple[int, float], ...]:
    rules = tuple((int(n), float(frac)) for n, frac in getattr(config, name))
    for n, frac in rules:
        if n < 1 or not 0 <= frac <= 1:
            raise ValueError(f"{type(config).__name__}.{name}: need n >= 1 and a fraction in [0, 1], got ({n}, {frac})")
    return rules


@dataclass
class GopherRepetitionConfig:
    """Gopher's repetition thresholds (fractions of lines, paragraphs, and of characters)."""

    dup_line_frac: float | None = 0.3
    dup_para_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    dup_para_char_frac: float | None = 0.2
    top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    dup_n_grams: tuple[tuple[int, float], ...] = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))

    def __post_init__(self) -> None:
        check_fraction(
            self, "dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac", optional=True
        )
        self.top_n_grams = _check_ngram_rules(self, "top_n_grams")
        self.dup_n_grams = _check_ngram_rules(self, "dup_n_grams")


class GopherRepetitionFilter(RuleFilter):
    """Drops repetitive documents: repeated lines or paragraphs, a dominant phrase, many repeated n-grams."""

    name = "gopher_repetition"

    def __init__(self, config: GopherRepetitionConfig | None = None) -> None:
        self.config = config or GopherRepetitionConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name, text = self.config, self.name, view.text
        if not text:
            return f"{name}:empty", "empty text"
        n_chars = len(text)
        paragraphs = _PARAGRAPH_BREAK.split(text.strip())
        dups, dup_chars = duplicates(paragraphs)
        signals["dup_para_frac"] = dups / len(paragraphs)
        if c.dup_para_frac is not None and dups / len(paragraphs) > c.dup_para_frac:
            return rejection(name, "dup_para_frac", "dup_para_frac", dups / len(paragraphs), ">", c.dup_para_frac)
        if c.dup_para_char_frac is not None and dup_chars / n_chars > c.dup_para_char_frac:
            return rejection(name, "dup_para_char_frac", "dup_para_char_frac", dup_chars / n_chars, ">",
                              c.dup_para_char_frac)
        lines = _LINE_BREAKS.split(text)
        dups, dup_chars = duplicates(lines)
        signals["dup_line_frac"] = dups / len(lines)
        if c.dup_line_frac is not None and dups / len(lines) > c.dup_line_frac:
            return rejection(name, "dup_line_frac", "dup_line_frac", dups / len(lines), ">", c.dup_line_frac)
        if c.dup_line_char_frac is not None and dup_chars / n_chars > c.dup_line_char_frac:
            return rejection(name, "dup_line_char_frac", "dup_line_char_frac", dup_chars / n_chars, ">",
                              c.dup_line_char_frac)
        words = view.words
        ngrams = _WordNgrams(words)
        for n, threshold in c.top_n_grams:
            if len(words) < n:
                continue
            frac = ngrams.top_chars(n) / n_chars
            if frac > threshold:
                return rejection(name, f"top_{n}_gram", f"top_{n}_gram_char_frac", frac, ">", threshold)
        for n, threshold in c.dup_n_grams:
            frac = (ngrams.repeated_chars(n) if len(words) >= n else 0) / n_chars
            if frac > threshold:
                return rejection(name, f"dup_{n}_gram", f"dup_{n}_gram_char_frac", frac, ">", threshold)
        return None
