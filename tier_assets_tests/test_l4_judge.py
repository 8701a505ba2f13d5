"""The L4 knowledge judge: margins from the real LLM, the calibrated combiner, its place in L4 and in ``evaluate-l4``.

The LLM tests judge a handful of real dev-set items only (CI time).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tier_assets.cli_l4 import main
from tier_assets.curation.l3.budget import TokenBudget
from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.evaluate import evaluate_rows
from tier_assets.curation.l4.extract import Item
from tier_assets.curation.l4.judge import (
    COMBINER,
    NOT_KNOWLEDGE,
    Combiner,
    fit_combiner,
    judge_knowledge,
    knowledge_margins,
    knowledge_probability,
)
from tier_assets.curation.l4.settings import L4Settings, load_l4_settings
from tier_assets.curation.llm_cache import LLMCache

TEXTS = ["Kamas is an extinct Samoyedic language (Uralic family).",
         "heapq.heappush(heap, item): Push item onto heap, maintaining the heap invariant.",
         "Understanding keyboards is a complex research task."]


def _item(text: str, kind: str = "definition") -> Item:
    return Item(kind, text, "d1", "L2", "en", "b1", 0, len(text), text, "rule:definition", None, subject=text.split()[0])


def test_fit_combiner_learns_the_direction_of_each_feature():
    rows = [{"margin": m, "log_chars": 4.0 + (i % 3)} for i, m in enumerate([-3, -2, -1.5, -1, 1, 1.5, 2, 3])]
    labels = [0, 0, 0, 1, 0, 1, 1, 1]
    comb = fit_combiner(rows, labels, ["margin", "log_chars"])
    assert comb.weights["margin"] > 0 and comb.center["margin"] == 0.0
    assert comb.probability({"margin": 3.0, "log_chars": 5.0}) > 0.8 > 0.2 > \
        comb.probability({"margin": -3.0, "log_chars": 5.0})
    assert Combiner().probability({"margin": 5.0}) == 0.5  # no weights: no opinion


def test_knowledge_probability_abstains_without_answers():
    assert knowledge_probability("x is a y.", "definition", math.nan) is None
    high = knowledge_probability(TEXTS[0], "definition", 2.0)
    low = knowledge_probability(TEXTS[0], "definition", -2.0)
    assert high is not None and low is not None and high > low  # the fitted margin weight is positive
    assert COMBINER.weights["margin"] > 0


def test_margins_from_the_llm_are_cached_and_budgeted(llm, tmp_path: Path):
    cache = LLMCache(tmp_path / "judge.jsonl")
    margins = knowledge_margins(llm, TEXTS, cache)
    assert all(m is not None and math.isfinite(m) and -20 <= m <= 20 for m in margins)
    again = LLMCache(tmp_path / "judge.jsonl")
    assert knowledge_margins(llm, TEXTS, again) == margins and again.hits == 3 and again.misses == 0
    budget = TokenBudget(0)
    assert knowledge_margins(llm, TEXTS, again, budget=budget) == [None, None, None] and budget.spent == 0

    items = [_item(t) for t in TEXTS]
    kept, failed = judge_knowledge(items, llm, 0.0, cache=again)
    assert kept == items and all("knowledge" in i.verification and "knowledge_margin" in i.verification
                                 for i in items)
    kept, failed = judge_knowledge([_item(t) for t in TEXTS], llm, 1.0, cache=again)
    assert kept == [] and {reason for _, reason, _ in failed} == {NOT_KNOWLEDGE}
    kept, failed = judge_knowledge([_item(TEXTS[0])], llm, 0.0, budget=TokenBudget(5), cache=again)
    assert kept == [] and failed[0][1] == "budget_exhausted"


def test_the_judge_in_the_l4_stage(llm, embedder):
    doc = {"doc_id": "kamas", "parent_ids": [], "tier": "L2", "domain": "en", "batch": "b1", "score": 3.0,
           "signals": {}, "models": {}, "text": "Kamas is an extinct Samoyedic language (Uralic family). "
                                                "Selkup is an endangered Southern Samoyedic language."}
    config = L4Settings(llm_extraction=False, knowledge_judge=True, min_knowledge=1.0)
    kept, rejected, stats = build_l4_partition([doc], llm, embedder, config)
    assert kept == [] and stats.reasons == {NOT_KNOWLEDGE: 2}
    assert all(r["stage"] == "l4_check" and r["signals"]["l4"]["verification"]["knowledge"] is not None
               for r in rejected)
    assert stats.spent_by_kind.get("knowledge", 0) > 0  # paid from the L4 budget
    kept, _, stats = build_l4_partition([doc], llm, embedder, L4Settings(llm_extraction=False,
                                                                         knowledge_judge=True, min_knowledge=0.0))
    assert len(kept) == 2 and all(r["signals"]["l4"]["verification"]["min_knowledge"] == 0.0 for r in kept)
    assert load_l4_settings("en").knowledge_judge is False  # off by default: it does not reach the target


def test_evaluate_with_margins_reports_the_judge_alone_and_combined(tmp_path: Path):
    rows = [{"text": TEXTS[0], "domain": "en", "label": 1},
            {"text": "Ethics is a rule or moral that is present in every proposition.", "domain": "en", "label": 0},
            {"text": "The word refers to the motion of the stone across the ice.", "domain": "en", "label": 0}]
    report = evaluate_rows(rows, margins=[3.0, -15.0, 3.0])
    assert report["with_checks"]["overall"]["kept"] == 2  # the rules pass Ethics, reject "The word"
    assert report["with_judge"]["overall"] == {"n": 3, "true_items": 1, "kept": 1, "precision": 1.0, "recall": 1.0}
    assert report["judge_only"]["overall"]["kept"] == 2  # Kamas and "The word": the judge alone keeps the fragment
    assert report["reasons"]["l4_check:not_knowledge"] == 1
    assert "judge_only" not in evaluate_rows(rows)


def test_evaluate_l4_judge_flag_reads_the_cache(tmp_path: Path, capsys, llm):
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps({"text": t, "domain": "code" if "heapq" in t else "en", "label": 1})
                            + "\n" for t in TEXTS[:2]), encoding="utf-8")
    cache = tmp_path / "cache.jsonl"
    assert main(["evaluate-l4", str(path), "--judge", "--judge-cache", str(cache)]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert set(report) >= {"with_checks", "judge_only", "with_judge"}
    assert "with_judge: precision" in captured.err and len(cache.read_text().splitlines()) == 2
