"""How well the L4 knowledge checks keep reliable items: precision and recall of "keep" on labelled text.

Each labelled line is ``{text, domain, label}`` (label 1: a reliable, self-contained
knowledge item; ``docs/l4-labelling.md``). The item's kind and subject are assigned
as the rule extractor would (``kind_and_subject``), the knowledge checks decide
keep / reject, and the report gives precision and recall of "keep" overall, per
kind and per domain, next to today's extractor without checks (everything kept).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tier_assets.curation.l4.checks import MAX_ITEM_CHARS, knowledge_problems
from tier_assets.curation.l4.extract import kind_and_subject
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


def evaluate_rows(rows: list[dict[str, Any]], max_chars: int = MAX_ITEM_CHARS) -> dict[str, Any]:
    """Checks vs no checks on labelled rows: overall, per kind and per domain, and the reasons for rejecting."""
    judged = []
    for row in rows:
        kind, subject = kind_and_subject(row["text"], row["domain"])
        problems = knowledge_problems(row["text"], row["domain"], kind, subject, max_chars)
        judged.append({**row, "kind": kind, "checks": not problems, "all": True,
                       "reason": problems[0].reason if problems else None})
    report: dict[str, Any] = {}
    for name, decision in (("with_checks", "checks"), ("without_checks", "all")):
        report[name] = {"overall": _scores((r["label"], r[decision]) for r in judged),
                        "by_kind": _breakdown(judged, "kind", decision),
                        "by_domain": _breakdown(judged, "domain", decision)}
    report["reasons"] = dict(Counter(r["reason"] for r in judged if r["reason"]).most_common())
    report["rejected_true_items"] = [{"text": r["text"][:160], "domain": r["domain"], "reason": r["reason"]}
                                     for r in judged if r["label"] and not r["checks"]][:20]
    report["kept_false_items"] = [{"text": r["text"][:160], "domain": r["domain"], "kind": r["kind"]}
                                  for r in judged if not r["label"] and r["checks"]][:20]
    return report


def evaluate_file(path: str | Path, split: str | None = None) -> dict[str, Any]:
    """``evaluate_rows`` over a labelled file (only rows whose ``split`` field equals ``split``, when given)."""
    rows = read_labelled(path)
    if split is not None:
        rows = [r for r in rows if r.get("split") == split]
        if not rows:
            raise LabelledFileError(f"{path}: no rows with split {split!r}")
    return {"file": str(path), "split": split, **evaluate_rows(rows)}
