"""L4 consistency: conflicting items about one subject are linked, the policy applied, and the blocking check
``conflicts_linked`` fails on a hand-made partition that keeps two conflicting items without a link.

The Adama sentences are the issue's example from the demo's en L4 (one subject, three exclusive claims).
"""

from __future__ import annotations

import math
from pathlib import Path

from tier_assets.curation.l3.budget import TokenBudget
from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.consistency import (
    CONFLICT,
    check_consistency,
    class_of,
    contradiction_probabilities,
    named_class,
    normalize_subject,
    rule_conflict,
    unlinked_conflicts,
)
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.l4.tier import build_index, build_stored_partition, conflict_check
from tier_assets.curation.storage import PartitionRef, TierStore

ADAMA = ["Leland Adama is a Final Five Cylon.", "Leland Adama is a Human/Cylon Hybrid.",
         "Leland Adama is an Original Series Cylon."]


def _record(doc_id: str, text: str, subject: str, support: int = 1, **l4) -> dict:
    return {"doc_id": doc_id, "parent_ids": [f"src-{doc_id}"], "tier": "L4", "domain": "en", "batch": "b1",
            "text": text, "title": subject, "models": {},
            "signals": {"l4": {"kind": "definition", "subject": subject, "claim": text, "support": support,
                               "members": 1, "methods": ["rule:definition"],
                               "evidence": [{"doc_id": f"src-{doc_id}", "start": 0, "end": len(text), "text": text}],
                               **l4}}}


def _doc(doc_id: str, text: str) -> dict:
    return {"doc_id": doc_id, "parent_ids": [], "tier": "L2", "domain": "en", "batch": "b1", "text": text,
            "score": 3.0, "signals": {}, "models": {}}


def test_classes_and_rule_conflicts():
    assert normalize_subject("The Ocean Planet") == "ocean planet" and normalize_subject("  ") is None
    assert class_of(ADAMA[0], "Leland Adama") == "Final Five Cylon"
    assert named_class(class_of(ADAMA[1], "Leland Adama")) == {"human", "cylon", "hybrid"}
    assert class_of("Kamas is an extinct Samoyedic language (Uralic family).", "Kamas") == "extinct Samoyedic language"
    assert class_of("Kamas is a language spoken by millions.", "Kamas") == "language"
    assert named_class("extinct Samoyedic language") is None
    assert class_of("Lee Adama is the elder son of Carolanne and William Adama.", "Lee Adama") is None
    a, b, c = (_record(str(i), t, "Leland Adama") for i, t in enumerate(ADAMA))
    assert "cylon" in rule_conflict(a, b) and rule_conflict(a, c) and rule_conflict(b, c)
    # a refinement, a different subject, and a claim with no class: no conflict by the rules
    kamas = _record("k1", "Kamas is a Samoyedic language.", "Kamas")
    assert rule_conflict(kamas, _record("k2", "Kamas is an extinct Samoyedic language.", "Kamas")) is None
    assert rule_conflict(kamas, _record("k3", "Kamas is a Uralic language.", "Kamas")) is None  # the LLM's call
    assert rule_conflict(_record("c1", "Leland Adama is a Cylon.", "Leland Adama"), a) is None  # refined
    assert rule_conflict(a, _record("x", "Saul Tigh is an Original Series Cylon.", "Saul Tigh")) is None
    assert rule_conflict(a, _record("y", "Leland Adama is the father of Lee Adama.", "leland adama")) is None


def test_policy_more_support_wins_a_tie_rejects_all():
    tie = [_record(str(i), t, "Leland Adama") for i, t in enumerate(ADAMA)]
    kept, rejected, stats = check_consistency(tie)
    assert kept == [] and stats == {"conflicts": 3, "judged_pairs": 0, "rejected": 3}
    assert {r["reason"] for r in rejected} == {CONFLICT} and all(r["stage"] == "l4_consistency" for r in rejected)
    assert rejected[0]["signals"]["l4"]["conflicts_with"] == ["1", "2"] and "support 1 vs 1" in rejected[0]["detail"]

    supported = [_record("0", ADAMA[0], "Leland Adama", support=3), *tie[1:]]
    kept, rejected, _ = check_consistency(supported)
    assert [r["doc_id"] for r in kept] == ["0"] and kept[0]["signals"]["l4"]["conflicts_with"] == ["1", "2"]
    assert sorted(r["doc_id"] for r in rejected) == ["1", "2"]
    assert unlinked_conflicts(kept) == []


def test_conflicts_in_the_l4_stage(embedder):
    docs = [_doc(f"d{i}", f"{text} He appears in the reimagined series.") for i, text in enumerate(ADAMA)]
    docs.append(_doc("d9", "Kamas is an extinct Samoyedic language (Uralic family)."))
    kept, rejected, stats = build_l4_partition(docs, None, embedder, L4Settings(llm_extraction=False))
    conflicting = [r for r in rejected if r["reason"] == CONFLICT]
    assert sorted(r["text"] for r in conflicting) == sorted(ADAMA) and stats.consistency["conflicts"] == 3
    assert [r["title"] for r in kept] == ["Kamas"] and stats.reasons[CONFLICT] == 3


def test_the_blocking_check_fails_on_a_hand_made_partition(tmp_path: Path):
    store = TierStore(tmp_path / "data")
    ref = PartitionRef("L4", "en", "b1")
    both = [_record("a", ADAMA[0], "Leland Adama"), _record("b", ADAMA[2], "Leland Adama"),
            _record("k", "Kamas is an extinct Samoyedic language.", "Kamas")]
    store.write(ref, both)
    items, problems = conflict_check(store, "en", "b1")
    assert items == 3 and len(problems) == 1 and problems[0].startswith("a and b are both kept and conflict")
    linked = [_record("a", ADAMA[0], "Leland Adama", conflicts_with=["b"]),
              _record("b", ADAMA[2], "Leland Adama", conflicts_with=["a"]), both[2]]
    store.write(ref, linked)
    assert conflict_check(store, "en", "b1") == (3, [])


def test_the_llm_judges_what_the_rules_cannot_tell(llm):
    pairs = [("Kamas is an extinct language.", "Kamas is a language spoken by millions of people today."),
             ("Selkup is a Samoyedic language.", "Selkup is spoken in Siberia.")]
    probs = contradiction_probabilities(llm, pairs)
    assert all(p is not None and 0.0 <= p <= 1.0 and not math.isnan(p) for p in probs)
    records = [_record("1", pairs[0][0], "Kamas"), _record("2", pairs[0][1], "Kamas"),
               _record("3", "Selkup is a Samoyedic language.", "Selkup")]
    budget = TokenBudget(10_000)
    kept, rejected, stats = check_consistency(records, llm, None, min_contradiction=0.0, budget=budget)
    assert stats["judged_pairs"] == 1 and [r["doc_id"] for r in kept] == ["3"] and len(rejected) == 2
    assert budget.by_kind["contradiction"] > 0
    assert check_consistency(records, llm, None, min_contradiction=0.0, budget=TokenBudget(0))[2]["rejected"] == 0


def test_the_index_resolves_conflicts_across_batches(tmp_path: Path, embedder):
    store = TierStore(tmp_path / "data")
    tail = " He appears in the reimagined series."
    store.write(PartitionRef("L2", "en", "b1"), [_doc("a1", ADAMA[0] + tail), _doc("a2", ADAMA[0] + " Indeed.")])
    store.write(PartitionRef("L2", "en", "b2"), [{**_doc("c1", ADAMA[2] + tail), "batch": "b2"}])
    for batch in ("b1", "b2"):
        build_stored_partition(store, "en", batch, None, embedder, L4Settings(llm_extraction=False))
        assert conflict_check(store, "en", batch)[1] == []  # within one batch there is nothing to link
    index, stats = build_index(store, embedder)
    assert stats["l4_conflict"] == 1 and stats["conflicts"] == 1 and len(index) == 1
    (hit,) = index.search("Leland Adama", 1)
    (other,) = store.read_docs(PartitionRef("L4", "en", "b2"))
    assert hit.item["text"] == ADAMA[0] and hit.item["support"] == 2 and hit.item["subject"] == "Leland Adama"
    assert hit.item["conflicts_with"] == [other["doc_id"]]
