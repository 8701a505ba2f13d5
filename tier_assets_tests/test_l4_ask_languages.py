"""`ask` across languages: a Chinese question finds Chinese items, an English one never lands on them.

The items are extracted by the L4 rules from real pages of ``../shared/data`` (magic-html Chinese
articles, PlanetMath entries) and indexed with the shipped (English) MiniLM.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tier_assets.curation.l4.ask_routing import content_bigrams, is_chinese, lexical_scores
from tier_assets.curation.l4.checks import knowledge_problems
from tier_assets.curation.l4.extract import rule_items
from tier_assets.curation.l4.index import L4Index
from tier_assets.curation.l4.settings import L4Settings


def _doc(doc_id: str, text: str, domain: str) -> dict:
    return {"doc_id": doc_id, "domain": domain, "batch": "b1", "text": text, "meta": {}, "signals": {}}


@pytest.fixture(scope="module")
def index(shared_data: Path, embedder) -> L4Index:
    base = json.loads((shared_data / "html" / "magic-html-zh" / "article" / "base.json").read_text(encoding="utf-8"))
    docs = [_doc(f"zh-{n}", r["content"], "zh") for n, r in enumerate(base.values()) if r.get("content")]
    rows = [json.loads(line) for line in
            (shared_data / "math" / "planetmath-number-theory-sample.jsonl").read_text(encoding="utf-8").splitlines()]
    docs += [_doc(r["id"], r["text"], "math") for r in rows[:20]]
    items = [i for d in docs for i in rule_items(d, L4Settings(max_items_per_doc=50))
             if not knowledge_problems(i.text, d["domain"], i.kind, i.subject)]
    records = [{"text": i.text, "kind": i.kind, "subject": i.subject, "domain": i.domain,
                "evidence": [i.pointer()]} for i in items]
    assert sum(is_chinese(r["text"]) for r in records) >= 5 and sum(r["domain"] == "math" for r in records) >= 5
    return L4Index.from_vectors(embedder.encode([r["text"] for r in records]), records, embedder)


def test_language_of_a_question():
    assert is_chinese("文明是什么？") and is_chinese("What does 雄安站 mean? 雄安站是什么")
    assert not is_chinese("What is a class number?") and not is_chinese("雄安 station: where is it located?")
    assert not is_chinese("1234 ?!")
    # question words and particles carry no subject
    assert content_bigrams("文明是什么？") == {"文明"}
    assert content_bigrams("什么是类数？") == {"类数"}
    assert lexical_scores("文明是什么？", ["文明指人类社会进步的状态。", "京雄城际铁路"]) == [1.0, 0.0]
    assert lexical_scores("是什么？", ["文明"]) == [0.0]  # nothing to look for


def test_a_chinese_question_finds_chinese_items_about_its_subject(index):
    hits = index.search("文明是什么？", k=3)
    assert hits and all(h.match == "zh-lexical" and is_chinese(h.item["text"]) for h in hits)
    assert hits[0].score == 1.0 and "文明" in hits[0].item["text"]
    assert hits[0].item["subject"] == "文明"


def test_an_english_question_ranks_by_embedding_and_never_returns_chinese_items(index):
    hits = index.search("Which even numbers are divisible by 2 only once?", k=10)
    assert len(hits) == 10 and all(h.match == "embedding" and not is_chinese(h.item["text"]) for h in hits)
    assert hits[0].item["subject"] == "singly even number"


def test_a_chinese_question_about_nothing_in_l4_scores_zero(index):
    hits = index.search("量子色动力学是什么？", k=2)  # quantum chromodynamics: not in these pages
    assert all(h.score < 0.5 for h in hits)
