"""UltraData-Math's length rules: the cheap first gate of every domain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tier_assets.curation.l1.filters.base import DocView, RuleFilter, Verdict, rejection
from tier_assets.curation.validation import check_non_negative, check_order


@dataclass
class LengthConfig:
    """UltraData-Math's length rules: keep 80..1,000,000 characters; drop short documents without punctuation.

    ``sentence_marks`` adds the full-width Chinese comma and full stop to the paper's "." and ",".
    """

    min_chars: int | None = 80
    max_chars: int | None = 1_000_000
    short_doc_chars: int | None = 200
    sentence_marks: str = ".,。，"

    def __post_init__(self) -> None:
        check_non_negative(self, "min_chars", "max_chars", "short_doc_chars", optional=True)
        check_order(self, "min_chars", "max_chars", optional=True)
        if self.short_doc_chars is not None and not self.sentence_marks:
            raise ValueError("LengthConfig.sentence_marks must not be empty when short_doc_chars is set")


class LengthFilter(RuleFilter):
    """Cheap first gate: it also keeps enormous documents away from the costlier filters."""

    name = "length"

    def __init__(self, config: LengthConfig | None = None) -> None:
        self.config = config or LengthConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, n = self.config, len(view.text)
        signals["chars"] = n
        if c.max_chars is not None and n > c.max_chars:
            return rejection(self.name, "too_long", "chars", n, ">", c.max_chars)
        if c.min_chars is not None and n < c.min_chars:
            return rejection(self.name, "too_short", "chars", n, "<", c.min_chars)
        if (
            c.short_doc_chars is not None
            and n <= c.short_doc_chars
            and not any(mark in view.text for mark in c.sentence_marks)
        ):
            return f"{self.name}:short_no_punctuation", f"chars={n} <= {c.short_doc_chars} and none of {c.sentence_marks!r}"
        return None
