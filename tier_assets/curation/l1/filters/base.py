"""What the rule filters share: the document view (one tokenization), the verdict format, and FilterGroup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tier_assets.curation.l1.filters.latex import mask_latex
from tier_assets.curation.l1.filters.tokenizer import split_words
from tier_assets.curation.pipeline import Doc, Filter, StepResult, add_signals, reject

Verdict = tuple[str, str] | None


def duplicates(items: list[str]) -> tuple[int, int]:
    """(repeated elements, characters in them) counting every occurrence after the first (Gopher's definition)."""
    unique = set(items)
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


class DocView:
    """A document's text and its word tokens, computed once and shared by the filters of a FilterGroup."""

    __slots__ = ("text", "_words", "_masked")

    def __init__(self, text: str) -> None:
        self.text = text
        self._words: list[str] | None = None
        self._masked: DocView | None = None

    @property
    def words(self) -> list[str]:
        if self._words is None:
            self._words = split_words(self.text)
        return self._words

    def masked(self) -> DocView:
        """The view of :func:`mask_latex` (for math documents)."""
        if self._masked is None:
            masked = mask_latex(self.text)
            self._masked = self if masked == self.text else DocView(masked)
        return self._masked


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def rejection(filter_name: str, rule: str, metric: str, value: float, op: str, threshold: float) -> Verdict:
    return f"{filter_name}:{rule}", f"{metric}={_fmt(value)} {op} {_fmt(threshold)}"


def _signal_value(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


class RuleFilter(Filter):
    """A filter measured on a :class:`DocView`, so that a :class:`FilterGroup` can share one tokenization."""

    config: Any

    def check(self, doc: Doc) -> Verdict:
        return self.check_view(doc, DocView(doc["text"]))

    def check_view(self, doc: Doc, view: DocView) -> Verdict:
        signals: dict[str, Any] = {}
        verdict = self.evaluate(view, signals)
        if signals:
            add_signals(doc, self.name, {k: _signal_value(v) for k, v in signals.items()})
        return verdict

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        """Return None to keep or (reason, detail) to reject; put the measured values in ``signals``."""
        raise NotImplementedError


class FilterGroup(Filter):
    """Runs rule filters document by document over one shared :class:`DocView` (one tokenization).

    A rejected document names the member filter that rejected it as its ``stage``.
    """

    def __init__(self, name: str, filters: Sequence[RuleFilter]) -> None:
        self.name = name
        self.filters = list(filters)

    def process(self, docs: list[Doc]) -> StepResult:
        kept, rejected = [], []
        for doc in docs:
            view = DocView(doc["text"])
            for f in self.filters:
                verdict = f.check_view(doc, view)
                if verdict is not None:
                    rejected.append(reject(doc, f.name, *verdict))
                    break
            else:
                kept.append(doc)
        return StepResult(kept, rejected)
