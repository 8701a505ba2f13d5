"""Measure the L2 scorer (and the raw LLM judge) against human labels.

Input is any JSONL of ``{"text": ..., "label": 0|1}``. AUC needs no threshold;
accuracy uses the scorer's own decision line (``positive_at`` on its card, 3 on
the 0-5 scale, FineWeb-Edu's keep line), never a threshold fitted to the file
being evaluated: evaluation sets such as the DCLM holdout must not tune anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tier_assets.curation.l2.annotate import Annotator
from tier_assets.curation.l2.distill import POSITIVE_AT, QualityClassifier, roc_auc
from tier_assets.curation.l2.score import score_texts
from tier_assets.curation.models.llm import load_llm


class LabelledFileError(ValueError):
    """A labelled file line that is not ``{text: str, label: 0|1}``; the message names ``path:line``."""


def load_labelled(path: str | Path, limit: int | None = None) -> tuple[list[str], list[int]]:
    """Texts and 0/1 labels of a labelled JSONL file (first ``limit`` rows); a bad line raises ``LabelledFileError``."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelledFileError(f"{path}:{number}: not JSON ({exc})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise LabelledFileError(f"{path}:{number}: needs a string 'text'")
            if row.get("label") not in (0, 1) or isinstance(row.get("label"), bool):
                raise LabelledFileError(f"{path}:{number}: 'label' must be 0 or 1, got {row.get('label')!r}")
            texts.append(row["text"])
            labels.append(int(row["label"]))
            if limit and len(texts) >= limit:
                break
    return texts, labels


def agreement(scores: Sequence[float | None], labels: Sequence[int], positive_at: float) -> dict[str, Any]:
    """AUC and accuracy of ``scores`` against ``labels``; unscored items are counted, not guessed."""
    pairs = [(s, y) for s, y in zip(scores, labels, strict=True) if s is not None and np.isfinite(s)]
    if not pairs:
        return {"n": 0, "unscored": len(scores), "auc": None, "accuracy": None, "positive_at": positive_at}
    s = np.array([p[0] for p in pairs], dtype=np.float64)
    y = np.array([p[1] for p in pairs], dtype=int)
    return {"n": len(pairs), "unscored": len(scores) - len(pairs), "auc": roc_auc(s, y),
            "accuracy": float(np.mean((s >= positive_at) == (y == 1))), "positive_at": positive_at,
            "label_rate": float(y.mean())}


def evaluate_labelled(path: str | Path, classifier_dir: str | Path | None = None, llm_judge: bool = False,
                      llm_config: dict[str, Any] | None = None, domain: str = "en",
                      limit: int | None = None) -> dict[str, Any]:
    """Report for ``path``: the L2 classifier (if given) and the raw LLM 0-5 judge (if asked)."""
    texts, labels = load_labelled(path, limit)
    report: dict[str, Any] = {"file": str(path), "n": len(texts), "positives": int(sum(labels))}
    if classifier_dir is not None:
        clf = QualityClassifier.load(classifier_dir)
        scores, _ = score_texts(texts, clf)
        report["l2_classifier"] = {"version": clf.version, "annotator": clf.card["annotator"],
                                   **agreement(list(scores), labels, float(clf.card.get("positive_at", POSITIVE_AT)))}
    if llm_judge:
        annotator = Annotator(load_llm(llm_config), domain=domain)
        judged = annotator.judge(texts)
        report["llm_judge"] = {**annotator.llm.info, **agreement([j[0] for j in judged], labels, POSITIVE_AT)}
    return report
