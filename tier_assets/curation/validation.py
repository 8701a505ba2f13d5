"""Range checks for the settings dataclasses, called from their ``__post_init__``.

A bad setting (a negative count, a ratio of 1.5) would otherwise surface as an empty or silently unfiltered
tier hours later, so every config rejects it when it is built. Each helper reads the named fields of
``owner`` and raises ``ValueError`` naming the config class, the field and the bad value, e.g.
``LengthConfig.min_chars must be >= 0 or None, got -1``. ``optional=True`` lets ``None`` through for the
fields where ``None`` disables a rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _check(owner: object, fields: tuple[str, ...], is_bad: Callable[[Any], bool], requirement: str,
           optional: bool = False) -> None:
    for name in fields:
        value = getattr(owner, name)
        if optional and value is None:
            continue
        if is_bad(value):
            allowed = f"{requirement} or None" if optional else requirement
            raise ValueError(f"{type(owner).__name__}.{name} must be {allowed}, got {value!r}")


def check_non_negative(owner: object, *fields: str, optional: bool = False) -> None:
    """Counts, sizes, budgets and temperatures: below zero they have no meaning."""
    _check(owner, fields, lambda v: v < 0, ">= 0", optional)


def check_at_least_one(owner: object, *fields: str, integer: bool = False, optional: bool = False) -> None:
    """Sizes that must not be zero (batch sizes, n-gram lengths); ``integer`` also rejects floats and bools,
    for values used as array shapes or ranges."""
    if integer:
        _check(owner, fields, lambda v: not isinstance(v, int) or isinstance(v, bool) or v < 1,
               "an integer >= 1", optional)
    else:
        _check(owner, fields, lambda v: v < 1, ">= 1", optional)


def check_fraction(owner: object, *fields: str, optional: bool = False) -> None:
    """Ratios and probabilities, in [0, 1]: a threshold outside it keeps or rejects everything."""
    _check(owner, fields, lambda v: not 0 <= v <= 1, "in [0, 1]", optional)


def check_positive_fraction(owner: object, *fields: str) -> None:
    """Similarity thresholds in (0, 1] (Jaccard, cosine, copy detection): at 0 every pair would match."""
    _check(owner, fields, lambda v: not 0 < v <= 1, "in (0, 1]")


def check_cosine(owner: object, *fields: str) -> None:
    """Cosine-similarity thresholds, in [-1, 1]: outside it no pair or every pair passes."""
    _check(owner, fields, lambda v: not -1 <= v <= 1, "a cosine similarity in [-1, 1]")


def check_ngram_guard(owner: object, *fields: str) -> None:
    """Loop-guard n-gram sizes (``LLM.generate(no_repeat_ngram=...)``): 0 is off, 1 would ban every repeated token."""
    _check(owner, fields, lambda v: not isinstance(v, int) or isinstance(v, bool) or v < 0 or v == 1,
           "0 (off) or an integer >= 2")


def check_order(owner: object, low: str, high: str, optional: bool = False) -> None:
    """A lower bound above its upper bound would reject everything; with ``optional`` a ``None`` bound (no
    bound) is not compared."""
    lo, hi = getattr(owner, low), getattr(owner, high)
    if optional and (lo is None or hi is None):
        return
    if lo > hi:
        raise ValueError(f"{type(owner).__name__}: {low}={lo!r} is greater than {high}={hi!r}")
