"""Small, composable processing steps (after DataTrove's pipeline steps).

A document is a ``dict`` with the record schema's columns; while it is being
processed, ``signals`` and ``models`` are plain dicts (serialized at write time).
Every step takes a list of documents and returns the kept ones plus the rejected
ones, each rejected document carrying ``stage``, ``reason`` and ``detail``, so a
pipeline accounts for every input document: kept + rejected = input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Doc = dict[str, Any]


@dataclass
class StepResult:
    kept: list[Doc]
    rejected: list[Doc]


def reject(doc: Doc, stage: str, reason: str, detail: str = "") -> Doc:
    """Mark ``doc`` as rejected by ``stage`` (returns the same dict)."""
    doc["stage"] = stage
    doc["reason"] = reason
    doc["detail"] = detail
    return doc


def add_signals(doc: Doc, stage: str, values: dict[str, Any]) -> None:
    """Record per-stage signals on ``doc`` under ``signals[stage]``."""
    signals = doc.get("signals")
    if not isinstance(signals, dict):
        signals = {}
        doc["signals"] = signals
    signals.setdefault(stage, {}).update(values)


class Step:
    """A pipeline step; subclasses implement ``process`` (whole list) or a per-doc hook."""

    name: str = "step"

    def process(self, docs: list[Doc]) -> StepResult:
        raise NotImplementedError


class Mapper(Step):
    """Edits text and keeps the document; records its name in ``signals.mappers`` when it changed."""

    def map_text(self, text: str, doc: Doc) -> str:
        raise NotImplementedError

    def process(self, docs: list[Doc]) -> StepResult:
        for doc in docs:
            new = self.map_text(doc["text"], doc)
            if new != doc["text"]:
                doc["text"] = new
                signals = doc.setdefault("signals", {})
                signals.setdefault("mappers", []).append(self.name)
        return StepResult(docs, [])


class Filter(Step):
    """Keeps or rejects each document; ``check`` returns None to keep or (reason, detail) to reject."""

    def check(self, doc: Doc) -> tuple[str, str] | None:
        raise NotImplementedError

    def process(self, docs: list[Doc]) -> StepResult:
        kept, rejected = [], []
        for doc in docs:
            verdict = self.check(doc)
            if verdict is None:
                kept.append(doc)
            else:
                rejected.append(reject(doc, self.name, *verdict))
        return StepResult(kept, rejected)


@dataclass
class Pipeline:
    """Runs steps in order; rejected documents leave the flow at the step that rejected them."""

    steps: Sequence[Step]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def run(self, docs: Iterable[Doc], progress: Callable[[str], None] | None = None) -> StepResult:
        """Run every step; ``progress`` gets one line per step with counts and docs/s."""
        kept = list(docs)
        rejected: list[Doc] = []
        for step in self.steps:
            n_in = len(kept)
            start = time.perf_counter()
            result = step.process(kept)
            seconds = time.perf_counter() - start
            kept = result.kept
            rejected.extend(result.rejected)
            self.counts[step.name] = {"in": n_in, "kept": len(kept), "rejected": len(result.rejected)}
            if progress:
                progress(f"{step.name}: {n_in} in, {len(kept)} kept, {len(result.rejected)} rejected "
                         f"({n_in / max(seconds, 1e-9):,.0f} docs/s)")
        return StepResult(kept, rejected)
