"""L4 consistency: items about one subject that cannot all be true are linked, and a policy decides.

Duplicates are merged first (``organize``), so what is left about one subject is
distinct. Two items conflict when:

* **rules** (free, always): they have the same normalized subject and each puts
  it in a named class, "X is a/an C" with every word of C capitalized, and the
  classes differ, share a word and neither refines the other ("Leland Adama is a
  Final Five Cylon" / "... is a Human/Cylon Hybrid" / "... is an Original Series
  Cylon": three exclusive kinds of Cylon). Common-noun classes ("an extinct
  language" / "a language spoken by millions") are left to the LLM;
* **the LLM** (``conflict_judge``, paid from the L4 budget), where the rules cannot
  tell: pairs with the same subject, or embedding neighbours (cosine >=
  ``conflict_neighbour``), are asked "Can both statements be true at the same
  time?"; P(No) >= ``min_contradiction`` is a conflict.

Policy (``resolve``): conflicting items are linked both ways (``conflicts_with``,
item ids). Of two conflicting items the one with more support (distinct evidence
documents) is kept; on a tie both are rejected (``l4_conflict``): L4 does not pick
between equally supported contradictory claims. ``unlinked_conflicts`` is the
blocking check: no kept item may conflict (by the rules) with another kept item
unless they are linked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from tier_assets.curation.l3.budget import TokenBudget
from tier_assets.curation.l4.judge import paid_yes_no
from tier_assets.curation.llm_cache import LLMCache, Request
from tier_assets.curation.models.llm import LLM, Message
from tier_assets.curation.pipeline import Doc, reject
from tier_assets.curation.schema import loads

CONFLICT = "l4_conflict"
CONFLICT_STAGE = "l4_consistency"
CONTRADICTION_PROMPT_VERSION = "l4-contradiction-2026.1"
_CLASS = re.compile(r"\b(?:is|was|are|were)\s+(?:a|an)\s+(?P<cls>.+?)(?=\s+(?:that|which|who|whose|where|from|in|of|"
                    r"with|for|by|on|at|to|and|or|but|known|based|set|used|made|spoken|written|born|\w+ed|\w+ing)\b|"
                    r"[,.;:()\[\]]|$)", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+")


def _l4(record: Doc) -> dict[str, Any]:
    signals = record.get("signals")
    return (signals if isinstance(signals, dict) else loads(signals)).get("l4") or {}


def normalize_subject(subject: str | None) -> str | None:
    """Lower case, no leading article, no punctuation, single spaces: "The Ocean Planet" = "ocean planet"."""
    if not subject:
        return None
    words = _WORD.findall(subject.lower())
    while words and words[0] in ("the", "a", "an"):
        words.pop(0)
    return " ".join(words) or None


def class_of(claim: str, subject: str | None = None) -> str | None:
    """The class an "X is a/an C" claim puts its subject in, as written (None when it states no class)."""
    text = claim
    if subject and claim.lower().startswith(subject.lower()):
        text = claim[len(subject):]
    m = _CLASS.search(text)
    if not m or m.start() > 3:  # the class must be said of the subject, not of a later clause
        return None
    return m.group("cls").strip() or None


def named_class(cls: str | None) -> frozenset[str] | None:
    """The lower-cased words of a named class, every word capitalized ("Final Five Cylon"), else None.

    Named classes are a work's or a field's own categories, which exclude each other; common-noun
    classes ("an extinct language", "a Samoyedic language") usually do not, so the rules leave them
    to the LLM judge.
    """
    words = _WORD.findall(cls or "")
    if not words or not all(w[0].isupper() or w[0].isdigit() for w in words):
        return None
    return frozenset(w.lower() for w in words)


def rule_conflict(a: Doc, b: Doc) -> str | None:
    """Why the rules say ``a`` and ``b`` cannot both be true, or None (no conflict, or the rules cannot tell)."""
    la, lb = _l4(a), _l4(b)
    subject = normalize_subject(la.get("subject"))
    if subject is None or subject != normalize_subject(lb.get("subject")):
        return None
    ca = named_class(class_of(str(a["text"]), la.get("subject")))
    cb = named_class(class_of(str(b["text"]), lb.get("subject")))
    if ca is None or cb is None or ca == cb or ca <= cb or cb <= ca or not ca & cb:
        return None
    return f"{subject!r} is put in two different classes of {', '.join(sorted(ca & cb))!r}: " \
           f"{' '.join(sorted(ca))!r} vs {' '.join(sorted(cb))!r}"


def contradiction_prompt(first: str, second: str) -> list[Message]:
    """Asks whether two statements can both be true; answered by one token, Yes or No."""
    return [{"role": "system", "content": "You check whether two statements contradict each other."},
            {"role": "user", "content": f"Statement 1: {first[:600]}\nStatement 2: {second[:600]}\n"
                                        "Can both statements be true at the same time? Answer Yes or No."}]


def contradiction_probabilities(llm: LLM, pairs: Sequence[tuple[str, str]], cache: LLMCache | None = None,
                                budget: TokenBudget | None = None) -> list[float | None]:
    """P(No) / (P(Yes) + P(No)) per pair (NaN when neither is seen); None where ``budget`` could not pay."""
    requests = [Request(None, "l4:contradiction", contradiction_prompt(a, b)) for a, b in pairs]
    answers = paid_yes_no(llm, cache, requests, CONTRADICTION_PROMPT_VERSION, budget, "contradiction")
    return [None if lp is None else math.nan if lp["Yes"] == lp["No"] == -math.inf
            else 1.0 / (1.0 + math.exp(lp["Yes"] - lp["No"])) for lp in answers]


def rule_pairs(records: Sequence[Doc]) -> dict[tuple[int, int], str]:
    """Every pair (i < j) the rules find in conflict, with why."""
    by_subject: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        subject = normalize_subject(_l4(rec).get("subject"))
        if subject:
            by_subject.setdefault(subject, []).append(i)
    found = {}
    for members in by_subject.values():
        for i, j in combinations(members, 2):
            why = rule_conflict(records[i], records[j])
            if why:
                found[(i, j)] = why
    return found


def judge_pairs(records: Sequence[Doc], vectors: np.ndarray | None, neighbour: float,
                skip: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Pairs the LLM is asked about: same subject or cosine >= ``neighbour``, same domain, not ``skip``ped."""
    pairs = set()
    for i, j in combinations(range(len(records)), 2):
        if (i, j) in skip or records[i]["domain"] != records[j]["domain"]:
            continue
        same = normalize_subject(_l4(records[i]).get("subject")) is not None and \
            normalize_subject(_l4(records[i]).get("subject")) == normalize_subject(_l4(records[j]).get("subject"))
        if same or (vectors is not None and float(vectors[i] @ vectors[j]) >= neighbour):
            pairs.add((i, j))
    return sorted(pairs)


def resolve(records: Sequence[Doc], conflicts: dict[tuple[int, int], str]) -> tuple[list[Doc], list[Doc]]:
    """Apply the policy: (kept, rejected). Links both ways; more support wins; a tie rejects both."""
    links: dict[int, dict[int, str]] = {}
    for (i, j), why in conflicts.items():
        links.setdefault(i, {})[j] = why
        links.setdefault(j, {})[i] = why
    kept, rejected = [], []
    for i, rec in enumerate(records):
        if i not in links:
            kept.append(rec)
            continue
        l4 = _l4(rec)
        support = int(l4.get("support") or 1)
        ids = sorted(str(records[j]["doc_id"]) for j in links[i])
        out = {**rec, "signals": {**(rec["signals"] if isinstance(rec["signals"], dict) else loads(rec["signals"])),
                                  "l4": {**l4, "conflicts_with": ids}}}
        beaten = [j for j in links[i] if int(_l4(records[j]).get("support") or 1) >= support]
        if beaten:
            j = beaten[0]
            rejected.append(reject(out, CONFLICT_STAGE, CONFLICT,
                                   f"conflicts with {records[j]['doc_id']} (support {support} vs "
                                   f"{int(_l4(records[j]).get('support') or 1)}): {links[i][j]}"))
        else:
            kept.append(out)
    return kept, rejected


def check_consistency(records: Sequence[Doc], llm: LLM | None = None, vectors: np.ndarray | None = None,
                      neighbour: float = 0.8, min_contradiction: float = 0.9, cache: LLMCache | None = None,
                      budget: TokenBudget | None = None) -> tuple[list[Doc], list[Doc], dict[str, Any]]:
    """Find conflicts (rules, then the LLM where given) and apply the policy: (kept, rejected, stats)."""
    conflicts = rule_pairs(records)
    asked = 0
    if llm is not None:
        pairs = judge_pairs(records, vectors, neighbour, set(conflicts))
        asked = len(pairs)
        probs = contradiction_probabilities(llm, [(str(records[i]["text"]), str(records[j]["text"])) for i, j in pairs],
                                            cache, budget)
        for (i, j), p in zip(pairs, probs, strict=True):
            if p is not None and not math.isnan(p) and p >= min_contradiction:
                conflicts[(i, j)] = f"the LLM judges them contradictory (P(No) {p:.3f} >= {min_contradiction})"
    kept, rejected = resolve(records, conflicts)
    return kept, rejected, {"conflicts": len(conflicts), "judged_pairs": asked, "rejected": len(rejected)}


def unlinked_conflicts(records: Sequence[Doc]) -> list[str]:
    """Kept items the rules find in conflict that do not link each other (empty: the promise holds)."""
    problems = []
    for (i, j), why in sorted(rule_pairs(records).items()):
        a, b = records[i], records[j]
        if str(b["doc_id"]) in (_l4(a).get("conflicts_with") or []) and \
                str(a["doc_id"]) in (_l4(b).get("conflicts_with") or []):
            continue
        problems.append(f"{a['doc_id']} and {b['doc_id']} are both kept and conflict without a link: {why}")
    return problems
