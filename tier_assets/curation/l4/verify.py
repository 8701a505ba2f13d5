"""L4 verification: an item is kept only if its evidence pointer resolves and supports it.

Checks, cheapest first: the span lies inside the source (never across into
another document) and its text is exactly the cited text, and the source's text
still has the hash recorded at extraction (``span_mismatch``; a stored item whose
source changed since is ``stale_evidence``); the item's key terms are present in the span
(``terms_missing``); for LLM items, the judge's calibrated P(Yes) that the span
entails the item (``not_entailed``; ``budget_exhausted`` when the budget cannot
pay). Rule items cite their own source words, so the judge is not paid for them.
``evidence_problems`` is the same pointer check over stored L4 records, for the
blocking asset check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tier_assets.curation.l3.budget import TokenBudget
from tier_assets.curation.l3.verify import judge_pairs
from tier_assets.curation.l4.extract import Item, term_coverage, text_sha256
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.llm_cache import LLMCache
from tier_assets.curation.models.llm import LLM
from tier_assets.curation.pipeline import Doc
from tier_assets.curation.schema import loads

STALE = "stale_evidence"


def pointer_problems(pointer: Mapping[str, Any], source_text_by_id: Mapping[str, str]) -> list[str]:
    """What is wrong with one evidence pointer {doc_id, start, end, text} (empty when it resolves exactly)."""
    doc_id = pointer.get("doc_id")
    start, end, cited = pointer.get("start"), pointer.get("end"), pointer.get("text")
    if doc_id not in source_text_by_id:
        return [f"evidence doc {doc_id} not found"]
    source = source_text_by_id[doc_id]
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
        return [f"evidence span of {doc_id} is not a pair of integers: {start!r}, {end!r}"]
    if not 0 <= start < end <= len(source):
        return [f"evidence span [{start}, {end}) of {doc_id} is outside its text (length {len(source)}): "
                "a span never crosses into another document"]
    if source[start:end] != cited:
        return [f"evidence span [{start}, {end}) of {doc_id} reads {source[start:end][:60]!r}, "
                f"not the cited {str(cited)[:60]!r}"]
    if is_stale(pointer, source):
        return [f"{STALE}: evidence doc {doc_id} changed after extraction (its text no longer has the hash "
                f"{str(pointer.get('source_sha256'))[:12]}...)"]
    return []


def is_stale(pointer: Mapping[str, Any], source: str) -> bool:
    """The pointer keeps the hash of its source's text and the source's text has changed since."""
    recorded = pointer.get("source_sha256")
    return recorded is not None and recorded != text_sha256(source)


def evidence_problems(item: Doc, source_text_by_id: Mapping[str, str]) -> list[str]:
    """Every problem of an L4 record's evidence pointers (empty list: each resolves to exactly its cited text)."""
    signals = item.get("signals")
    l4 = (signals if isinstance(signals, dict) else loads(signals)).get("l4") or {}
    evidence = l4.get("evidence") or []
    if not evidence:
        return [f"L4 item {item.get('doc_id')} has no evidence pointer"]
    return [p for pointer in evidence for p in pointer_problems(pointer, source_text_by_id)]


def without_stale_evidence(item: Doc, source_text_by_id: Mapping[str, str]) -> Doc | None:
    """The L4 record with only the pointers whose source is still the text they were extracted from (support and
    parent ids recounted), or None when none is left: the item is ``stale_evidence`` and must not be kept."""
    signals = item.get("signals")
    signals = dict(signals if isinstance(signals, dict) else loads(signals))
    l4 = dict(signals.get("l4") or {})
    fresh = [p for p in l4.get("evidence") or []
             if p.get("doc_id") in source_text_by_id and not is_stale(p, source_text_by_id[p["doc_id"]])]
    if len(fresh) == len(l4.get("evidence") or []):
        return item
    if not fresh:
        return None
    doc_ids = sorted({str(p["doc_id"]) for p in fresh})
    signals["l4"] = {**l4, "evidence": fresh, "support": len(doc_ids)}
    return {**item, "parent_ids": doc_ids, "signals": signals}


def verify_items(items: Sequence[Item], source_text_by_id: Mapping[str, str], llm: LLM | None,
                 config: L4Settings, budget: TokenBudget | None = None,
                 priors: dict[str, float] | None = None,
                 cache: LLMCache | None = None) -> tuple[list[Item], list[tuple[Item, str, str]]]:
    """(verified items, [(item, reason, detail)]); scores are recorded in ``item.verification``.

    Entailment judgements already paid for are read from ``cache`` when one is given.
    """
    passed: list[Item] = []
    failed: list[tuple[Item, str, str]] = []
    to_judge: list[Item] = []
    for item in items:
        problems = pointer_problems(item.pointer(), source_text_by_id)
        if problems:
            failed.append((item, "span_mismatch", "; ".join(problems)))
            continue
        coverage = term_coverage(item.text, item.cited)
        item.verification["term_coverage"] = round(coverage, 4)
        if coverage < config.min_term_coverage:
            failed.append((item, "terms_missing",
                           f"{coverage:.0%} of the item's key terms are in its span (< {config.min_term_coverage:.0%})"))
            continue
        if item.method == "llm" and config.judge and llm is not None:
            to_judge.append(item)
        else:
            passed.append(item)
    if to_judge:
        probs = judge_pairs(llm, [(i.cited, i.text) for i in to_judge], budget, config.judge_calibrated,
                            priors=priors, cache=cache, doc_ids=[i.doc_id for i in to_judge], task="l4:judge")
        for item, p in zip(to_judge, probs, strict=True):
            item.verification.update(entailment=None if p is None else round(p, 4),
                                     min_entailment=config.min_entailment, calibrated=config.judge_calibrated)
            if p is None:
                failed.append((item, "budget_exhausted", "no budget left for the entailment judge"))
            elif math.isnan(p):
                failed.append((item, "judge_unavailable", "the backend returned no Yes/No log-probs"))
            elif p < config.min_entailment:
                failed.append((item, "not_entailed", f"judge P(Yes) {p:.3f} < {config.min_entailment}"))
            else:
                passed.append(item)
    return passed, failed
