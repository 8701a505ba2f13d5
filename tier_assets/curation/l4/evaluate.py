"""How well the L4 knowledge checks keep reliable items: precision and recall of "keep" on labelled text.

Each labelled line is ``{text, domain, label}`` (label 1: a reliable, self-contained
knowledge item; ``docs/l4-labelling.md``). The item's kind and subject are assigned
as the rule extractor would (``kind_and_subject``), the knowledge checks decide
keep / reject, and the report gives precision and recall of "keep" overall, per
kind and per domain, next to today's extractor without checks (everything kept).
Given the knowledge judge's margins (``judge.knowledge_margins``), it also reports
the judge alone (Platt-scaled margin >= 0.5, no rules) and the rules followed by
the calibrated combiner (``judge.COMBINER`` >= ``judge.MIN_KNOWLEDGE``). Given the knowledge
scorer's probabilities (``scorer.KnowledgeScorer.score``) and a threshold per domain where it is on
(``scorer_thresholds``: what the L4 recipe turns on), it reports the rules followed by the scorer
(P >= the domain's threshold; a row of another domain, or unscored, on the rules alone): what the
L4 stage keeps by default.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tier_assets.curation.l4.checks import MAX_ITEM_CHARS, knowledge_problems
from tier_assets.curation.l4.extract import kind_and_subject
from tier_assets.curation.l4.judge import JUDGE_ONLY, MIN_KNOWLEDGE, knowledge_probability
from tier_assets.curation.l4.scorer import NOT_KNOWLEDGE_SCORER, KnowledgeScorer
from tier_assets.curation.l4.settings import load_l4_settings
from tier_assets.curation.schema import DOMAINS


class LabelledFileError(ValueError):
    """A labelled file line that is not ``{text: str, domain: one of DOMAINS, label: 0|1}``."""


def read_labelled(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a labelled JSONL file; a malformed line raises ``LabelledFileError`` naming it."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelledFileError(f"{path}:{number}: not JSON ({exc})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
                raise LabelledFileError(f"{path}:{number}: needs a non-empty string 'text'")
            if row.get("domain") not in DOMAINS:
                raise LabelledFileError(f"{path}:{number}: 'domain' must be one of {DOMAINS}, got "
                                        f"{row.get('domain')!r}")
            if row.get("label") not in (0, 1) or isinstance(row.get("label"), bool):
                raise LabelledFileError(f"{path}:{number}: 'label' must be 0 or 1, got {row.get('label')!r}")
            rows.append(row)
    if not rows:
        raise LabelledFileError(f"{path}: no labelled rows")
    return rows


def _scores(pairs: Iterable[tuple[int, bool]]) -> dict[str, Any]:
    """n, true items, kept, precision and recall of "keep" for (label, kept) pairs."""
    pairs = list(pairs)
    true = sum(label for label, _ in pairs)
    kept = sum(keep for _, keep in pairs)
    hits = sum(1 for label, keep in pairs if label and keep)
    return {"n": len(pairs), "true_items": true, "kept": kept,
            "precision": round(hits / kept, 4) if kept else None,
            "recall": round(hits / true, 4) if true else None}


def _breakdown(rows: list[dict[str, Any]], key: str, decision: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[tuple[int, bool]]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append((row["label"], row[decision]))
    return {name: _scores(pairs) for name, pairs in sorted(groups.items())}


def _judged(row: dict[str, Any], margin: float | None, max_chars: int,
            min_knowledge: float, score: float | None = None, min_score: float | None = None,
            scored: bool = False) -> dict[str, Any]:
    """One row with every decision: rules, everything, (given a margin) judge alone and rules + judge, and
    (``scored``) rules + scorer, the scorer on where ``min_score`` is given."""
    kind, subject = kind_and_subject(row["text"], row["domain"])
    problems = knowledge_problems(row["text"], row["domain"], kind, subject, max_chars)
    out = {**row, "kind": kind, "checks": not problems, "all": True,
           "reason": problems[0].reason if problems else None}
    if margin is not None:
        alone = knowledge_probability(row["text"], kind, margin, JUDGE_ONLY)
        combined = knowledge_probability(row["text"], kind, margin)
        out.update(judge_only=alone is None or alone >= 0.5,
                   with_judge=not problems and (combined is None or combined >= min_knowledge),
                   knowledge=None if combined is None else round(combined, 4))
        if not problems and not out["with_judge"]:
            out["reason"] = "l4_check:not_knowledge"
    if scored:
        out["with_scorer"] = not problems and (min_score is None or score is None or score >= min_score)
        if not problems and not out["with_scorer"]:
            out["reason"] = NOT_KNOWLEDGE_SCORER
    return out


def evaluate_rows(rows: list[dict[str, Any]], max_chars: int = MAX_ITEM_CHARS,
                  margins: list[float | None] | None = None, min_knowledge: float = MIN_KNOWLEDGE,
                  scores: list[float | None] | None = None,
                  min_scores: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Checks vs no checks on labelled rows (and, given the judge's ``margins``, the judge alone and rules +
    judge; given the scorer's ``scores`` and ``min_scores``, a threshold per domain where it is on, rules +
    scorer): overall, per kind and per domain, and the reasons for rejecting."""
    judged = [_judged(row, None if margins is None else margins[i], max_chars, min_knowledge,
                      None if scores is None else scores[i], (min_scores or {}).get(row["domain"]),
                      scores is not None)
              for i, row in enumerate(rows)]
    decisions = [("with_checks", "checks"), ("without_checks", "all")]
    if margins is not None:
        decisions += [("judge_only", "judge_only"), ("with_judge", "with_judge")]
    if scores is not None:
        decisions += [("with_scorer", "with_scorer")]
    final = "with_judge" if margins is not None else "with_scorer" if scores is not None else "checks"
    report: dict[str, Any] = {}
    for name, decision in decisions:
        report[name] = {"overall": _scores((r["label"], r[decision]) for r in judged),
                        "by_kind": _breakdown(judged, "kind", decision),
                        "by_domain": _breakdown(judged, "domain", decision)}
    report["reasons"] = dict(Counter(r["reason"] for r in judged if r["reason"]).most_common())
    report["rejected_true_items"] = [{"text": r["text"][:160], "domain": r["domain"], "reason": r["reason"]}
                                     for r in judged if r["label"] and not r[final]][:20]
    report["kept_false_items"] = [{"text": r["text"][:160], "domain": r["domain"], "kind": r["kind"]}
                                  for r in judged if not r["label"] and r[final]][:20]
    return report


def read_split(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """The labelled rows of ``path`` (only those whose ``split`` field equals ``split``, when given)."""
    rows = read_labelled(path)
    if split is not None:
        rows = [r for r in rows if r.get("split") == split]
        if not rows:
            raise LabelledFileError(f"{path}: no rows with split {split!r}")
    return rows


def scorer_thresholds() -> dict[str, float]:
    """``min_knowledge_score`` of each domain whose L4 recipe turns ``knowledge_scorer`` on."""
    settings = {d: load_l4_settings(d) for d in DOMAINS}
    return {d: s.min_knowledge_score for d, s in settings.items() if s.knowledge_scorer}


def scorer_scores(rows: list[dict[str, Any]], domains: Iterable[str], scorer: KnowledgeScorer,
                  embedder: Any) -> list[float | None]:
    """The scorer's P(knowledge) of each row of ``domains`` (subject as the rule extractor assigns it);
    None elsewhere (the rows of other domains are not embedded)."""
    wanted = set(domains)
    picked = [i for i, r in enumerate(rows) if r["domain"] in wanted]
    out: list[float | None] = [None] * len(rows)
    if picked:
        subjects = [kind_and_subject(rows[i]["text"], rows[i]["domain"])[1] for i in picked]
        scores = scorer.score([rows[i]["text"] for i in picked], [rows[i]["domain"] for i in picked], subjects,
                              embedder)
        for i, p in zip(picked, scores, strict=True):
            out[i] = p
    return out


def evaluate_file(path: str | Path, split: str | None = None, margins: list[float | None] | None = None,
                  embedder: Any = None, min_scores: Mapping[str, float] | None = None) -> dict[str, Any]:
    """``evaluate_rows`` over a labelled file's ``split`` rows (``margins``: the judge's, one per such row).
    Given an ``embedder``, also rules + scorer where ``min_scores`` (default: the L4 recipe's
    ``scorer_thresholds``) turns it on: the stage's default decision."""
    rows = read_split(path, split)
    scores = None
    if embedder is not None:
        min_scores = scorer_thresholds() if min_scores is None else min_scores
        scores = scorer_scores(rows, min_scores, KnowledgeScorer.load(), embedder)
    return {"file": str(path), "split": split, "scorer_domains": None if scores is None else dict(min_scores or {}),
            **evaluate_rows(rows, margins=margins, scores=scores, min_scores=min_scores)}
