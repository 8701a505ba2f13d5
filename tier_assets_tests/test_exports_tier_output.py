"""Exports that read L3 / L4 records, over records the real tiers made from real documents.

A session fixture runs L3 (``refine_partition``) and L4 (``build_l4_partition``, then the
index) with the embedded LLM and embedder on a few demo documents per domain, with small
budgets, and writes every kept and rejected record through TierStore. L2 is written by
hand from the same documents (its scores decide what L3 refines), in the ``models`` shape
the L2 tier writes. Expected chat messages are read from the stored fields, so the tests
hold whatever the model generated; the rule-extracted L4 definitions are fixed by the text.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sysconfig
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import zstandard

from tier_assets.curation.exports import Unformattable, chat_messages, default_spec, export_stage
from tier_assets.curation.l3.parse import Parsed, parse_output
from tier_assets.curation.l3.prompts import build_prompt, instructions
from tier_assets.curation.l3.refine import refine_partition
from tier_assets.curation.l3.settings import L3Settings
from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.l4.tier import build_index, index_dir
from tier_assets.curation.readers.base import ReaderConfig
from tier_assets.curation.readers.html import read_html
from tier_assets.curation.report import write_report
from tier_assets.curation.storage import PartitionRef, TierStore

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[1] / "tier_assets" / "demo_data"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
BATCH = "b1"
# Small budgets keep the fixture to three L3 generations and one L4 extraction: one L3 run per (en document,
# format, max_new_tokens), without the judge (the last output is cut short, so L3 rejects it); L4 sends the
# best en document to the LLM and extracts by rules only elsewhere.
L3_RUNS = (("en-burma", "dialogue", 160), ("en-rugby", "qa", 160), ("en-c4-0", "rewrite", 32))
L3_SETTINGS = L3Settings(max_source_chars=600, judge=False, budget_tokens=2_000)
L4_SETTINGS = L4Settings(budget_tokens=1_600, max_llm_docs=1, max_new_tokens=48, max_source_chars=500,
                         judge_reserve_tokens=400)


def _jsonl(path: Path, line: int) -> str:
    with open(path, encoding="utf-8") as fh:
        for i, row in enumerate(fh):
            if i == line:
                return json.loads(row)["text"]
    raise IndexError(line)


def _html(name: str) -> str:
    (page,) = read_html(next((DEMO / "zh" / "magic-html").glob(f"{name}*.html")), ReaderConfig())
    return page.text


def _l2(doc_id: str, domain: str, text: str, score: float, **meta: Any) -> dict[str, Any]:
    """An L2 record of a real document, with the ``models`` object the L1 and L2 tiers write."""
    return {
        "doc_id": doc_id, "parent_ids": [f"{doc_id}-l1"], "tier": "L2", "domain": domain, "batch": BATCH,
        "text": text, "score": score, "meta": meta or None, "signals": {"l2": {"score": score}},
        "models": {"l1": {"recipe": "recipe-A"},
                   "l2": {"classifier_version": f"clf-{domain}-v1", "prompt_version": "l2-2025.1",
                          "annotator": {"model": "smollm2-135m", "backend": "transformers"}}},
    }


def real_l2() -> dict[str, list[dict[str, Any]]]:
    cc, c4 = DEMO / "en" / "redpajama-cc-2023-06-sample.jsonl", DEMO / "en" / "redpajama-c4-sample.jsonl"
    return {
        "en": [_l2("en-burma", "en", _jsonl(cc, 8), 4.0), _l2("en-rugby", "en", _jsonl(cc, 0), 3.5),
               _l2("en-c4-0", "en", _jsonl(c4, 0), 3.0), _l2("en-c4-1", "en", _jsonl(c4, 1), 2.5)],
        "zh": [_l2("zh-physics", "zh", _html("83bd4dfc"), 3.5), _l2("zh-bai-juyi", "zh", _html("9f4c1adb"), 3.0)],
        "math": [_l2("math-kaon", "math", _jsonl(DEMO / "math" / "arxiv-latex-sample.jsonl", 8), 3.5),
                 _l2("math-se", "math", _jsonl(DEMO / "math" / "stackexchange-sample-a.jsonl", 0), 3.0)],
        "code": [_l2("code-textwrap", "code", (STDLIB / "textwrap.py").read_text(), 3.5, language="python"),
                 _l2("code-bisect", "code", (STDLIB / "bisect.py").read_text(), 3.0, language="python")],
    }


@pytest.fixture(scope="session")
def tiers(tmp_path_factory: pytest.TempPathFactory, llm, embedder) -> TierStore:
    """L2 -> L3 -> L4 and the L4 index, the way the tier assets chain them (sources read back from the store)."""
    store = TierStore(tmp_path_factory.mktemp("tiers") / "data")
    for domain, docs in real_l2().items():
        store.write(PartitionRef("L2", domain, BATCH), docs)
        if domain == "en":
            l2 = {d["doc_id"]: d for d in store.read_docs(PartitionRef("L2", domain, BATCH))}
            kept, rejected = [], []
            for doc_id, fmt, max_new in L3_RUNS:
                config = dataclasses.replace(L3_SETTINGS, formats={domain: [fmt]}, max_new_tokens=max_new)
                k, r, _ = refine_partition([l2[doc_id]], llm, embedder, config)
                kept, rejected = kept + k, rejected + r
            store.write(PartitionRef("L3", domain, BATCH), kept)
            store.write(PartitionRef("L3", domain, BATCH), rejected, kind="rejected")
        sources = [d for tier in ("L2", "L3") for d in store.read_docs(PartitionRef(tier, domain, BATCH))]
        config = L4_SETTINGS if domain == "en" else dataclasses.replace(L4_SETTINGS, llm_extraction=False)
        kept, rejected, _ = build_l4_partition(sources, llm, embedder, config)
        store.write(PartitionRef("L4", domain, BATCH), kept)
        store.write(PartitionRef("L4", domain, BATCH), rejected, kind="rejected")
    build_index(store, embedder)
    return store


def records(store: TierStore, tier: str) -> dict[str, dict[str, Any]]:
    return {r["doc_id"]: r for ref in store.partitions(tier) for r in store.read_docs(ref)}


def read_export(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    manifest = json.loads((out / "manifest.json").read_text())
    rows = []
    for shard in manifest["shards"]:
        path = out / shard["path"]
        if path.name.endswith(".parquet"):
            rows += pq.read_table(path).to_pylist()
        else:
            with open(path, "rb") as f:
                raw = zstandard.ZstdDecompressor().stream_reader(f).read()
            rows += [json.loads(line) for line in raw.decode("utf-8").splitlines()]
    return manifest, rows


# ---------------------------------------------------------------- the fixture itself


def test_the_tiers_made_what_the_export_tests_need(tiers: TierStore, llm, embedder) -> None:
    l3 = records(tiers, "L3")
    formats = Counter(r["signals"]["l3"]["format"] for r in l3.values())
    assert formats == {"qa": 1, "dialogue": 1}, formats
    rejected = tiers.read_docs(PartitionRef("L3", "en", BATCH), "rejected")
    assert [(r["signals"]["l3"]["format"], r["stage"], r["reason"]) for r in rejected] == [
        ("rewrite", "l3_parse", "truncated")]
    for rec in l3.values():
        assert rec["parent_ids"][0] in ("en-burma", "en-rugby")
        assert rec["models"]["l3"] == {"llm": llm.model_id, "backend": "transformers", "embedder": embedder.version}
        assert rec["models"]["l2"]["classifier_version"] == "clf-en-v1"  # L3 keeps its source's objects
    kinds = Counter((r["domain"], r["signals"]["l4"]["kind"]) for r in records(tiers, "L4").values())
    assert kinds[("en", "definition")] >= 1 and kinds[("code", "definition")] >= 1
    assert kinds[("zh", "fact")] >= 1 and kinds[("code", "procedure")] >= 1


# ---------------------------------------------------------------- SFT: chat from structured fields


def test_sft_is_chat_from_l3_fields_and_l4_definitions(tiers: TierStore, tmp_path: Path) -> None:
    m = export_stage(tiers, default_spec("sft", 1_000_000), tmp_path / "sft")
    _, rows = read_export(tmp_path / "sft")
    l3, l4 = records(tiers, "L3"), records(tiers, "L4")
    assert set(rows[0]) == {"messages", "doc_id", "tier", "domain"}
    by_id = {r["doc_id"]: r["messages"] for r in rows}
    for r in rows:
        roles = [msg["role"] for msg in r["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant"
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
    # every L3 Q&A and dialogue is a chat record built from its fields
    chat_l3 = {i: r["signals"]["l3"] for i, r in l3.items() if r["signals"]["l3"]["format"] in ("qa", "dialogue")}
    assert {r["doc_id"] for r in rows if r["tier"] == "L3"} == set(chat_l3)
    for doc_id, sig in chat_l3.items():
        fields, messages = sig["fields"], by_id[doc_id]
        if sig["format"] == "qa":
            assert messages == [{"role": "user", "content": fields["question"]},
                                {"role": "assistant", "content": fields["answer"]}]
        else:
            first = fields["turns"][0]["speaker"]
            user_turns = [t["text"] for t in fields["turns"] if t["speaker"] == first]
            assert "\n".join(m["content"] for m in messages if m["role"] == "user") == "\n".join(user_turns)
            assert len(messages) >= 2
    # L4: definitions become "What is TERM?" answered by their claim, Q&A items their stored question and
    # answer; nothing else has a question
    definitions = {i: r["signals"]["l4"] for i, r in l4.items() if r["signals"]["l4"]["kind"] == "definition"}
    qa = {i: r["signals"]["l4"] for i, r in l4.items() if r["signals"]["l4"]["kind"] == "qa"}
    assert {r["doc_id"] for r in rows if r["tier"] == "L4"} == set(definitions) | set(qa)
    for doc_id, sig in definitions.items():
        assert by_id[doc_id][1] == {"role": "assistant", "content": sig["claim"]}
    for doc_id, sig in qa.items():
        assert sig["question"] and by_id[doc_id] == [{"role": "user", "content": sig["question"]},
                                                     {"role": "assistant", "content": sig["claim"]}]
    questions = {msgs[0]["content"] for msgs in by_id.values()}
    assert "What is myanmar?" in questions  # en rule definition: "myanmar is a country in Southeast Asia, ..."
    assert "What does `TextWrapper` do in Python?" in questions  # a class docstring of textwrap.py
    others = Counter(f"l4_no_question:{s['signals']['l4']['kind']}" for s in l4.values()
                     if s["signals"]["l4"]["kind"] not in ("definition", "qa"))
    assert others["l4_no_question:fact"] >= 1 and others["l4_no_question:procedure"] >= 1
    # the rest was selected (the budget covers everything) and is counted by reason, not dropped
    assert m.skipped == dict(sorted(others.items()))
    assert m.delivered_docs == len(rows) == len(chat_l3) + len(definitions) + len(qa)
    assert any(s.startswith(f"{sum(others.values())} selected record(s) could not be chat records") for s in m.shortfalls)


def test_a_record_without_its_fields_is_skipped_with_a_reason(tiers: TierStore, tmp_path: Path) -> None:
    """An L3 record of an older store (no ``signals.l3.fields``) is counted, never re-parsed from its text."""
    store = TierStore(tmp_path / "data")
    l3 = [r for ref in tiers.partitions("L3") for r in tiers.read_docs(ref)]
    for rec in l3:
        del rec["signals"]["l3"]["fields"]
    store.write(PartitionRef("L3", "en", BATCH), l3)
    m = export_stage(store, dataclasses.replace(default_spec("sft", 1_000_000), tier_weights={"L3": 1.0}),
                     tmp_path / "sft")
    assert m.delivered_docs == 0 and m.shards == []
    assert m.skipped == {"l3_no_fields": len(l3)}
    assert f"{len(l3)} selected record(s) could not be chat records and were skipped (l3_no_fields {len(l3)})" \
        in m.shortfalls


def _fields(fmt: str, variant: str, domain: str, raw: str, source: str) -> dict[str, Any]:
    parsed = parse_output(fmt, variant, domain, raw, "stop", source, instructions(build_prompt(fmt, variant, domain,
                                                                                             source)))
    assert isinstance(parsed, Parsed), parsed
    return parsed.fields


def test_chat_messages_per_l3_format_from_parsed_fields(tiers: TierStore) -> None:
    """Fields as L3's parser makes them from a generation, for the formats the fixture does not generate."""
    source = records(tiers, "L2")["en-rugby"]["text"][:600]
    knowledge = _fields("knowledge", "easy", "en", (
        "<knowledge>Learning Disability Rugby League is an adapted, non-competitive game.</knowledge>\n"
        "<exercise>Who is Learning Disability Rugby League for?</exercise>\n"
        "<solution>People with learning disabilities, who play an adapted version of the game.</solution>"), source)
    assert chat_messages("L3", {"l3": {"format": "knowledge", "fields": knowledge}}) == [
        {"role": "user", "content": "Who is Learning Disability Rugby League for?"},
        {"role": "assistant", "content": "People with learning disabilities, who play an adapted version of the game."},
    ]
    dialogue = _fields("dialogue", "teacher_student", "en", (
        "<dialogue>\nTeacher: What is this league about?\nStudent: Is it a game for everyone?\n"
        "Teacher: It is an adapted game that focuses on encouraging players.\nStudent: Thanks.\n</dialogue>"), source)
    assert chat_messages("L3", {"l3": {"format": "dialogue", "fields": dialogue}}) == [
        {"role": "user", "content": "What is this league about?"},
        {"role": "assistant", "content": "Is it a game for everyone?"},
        {"role": "user", "content": "It is an adapted game that focuses on encouraging players."},
        {"role": "assistant", "content": "Thanks."},
    ]
    rewrite = _fields("rewrite", "textbook", "en", "<rewrite>An adapted, non-competitive rugby game.</rewrite>",
                      source)
    assert chat_messages("L3", {"l3": {"format": "rewrite", "fields": rewrite}}) == Unformattable(
        "l3_not_an_exchange:rewrite")
    assert chat_messages("L3", {"l3": {"format": "qa", "fields": {"question": "Why?", "answer": " "}}}) == \
        Unformattable("l3_incomplete_fields:qa")
    assert chat_messages("L3", {"l3": {"format": "dialogue", "fields": {"turns": [
        {"speaker": "Teacher", "text": "Ready?"}, {"speaker": "Teacher", "text": "Then go."}]}}}) == \
        Unformattable("l3_one_sided_dialogue")
    assert chat_messages("L2", {"l2": {"score": 3.0}}) == Unformattable("not_chat_tier:L2")


def test_l4_definition_questions_per_language(tiers: TierStore) -> None:
    l4 = records(tiers, "L4").values()
    en = next(r["signals"] for r in l4 if r["title"] == "myanmar")
    assert chat_messages("L4", en) == [{"role": "user", "content": "What is myanmar?"},
                                       {"role": "assistant", "content": en["l4"]["claim"]}]
    code = next(r["signals"] for r in l4 if r["signals"]["l4"]["term"] == "TextWrapper")
    assert chat_messages("L4", code)[0] == {"role": "user", "content": "What does `TextWrapper` do in Python?"}
    # the zh demo pages state facts, no definitions: the Chinese question form on the same fields
    zh = {"l4": {**en["l4"], "term": "相对运动", "methods": ["rule:definition"]}}
    assert chat_messages("L4", zh)[0] == {"role": "user", "content": "什么是相对运动？"}
    fact = next(r["signals"] for r in l4 if r["domain"] == "zh")
    assert chat_messages("L4", fact) == Unformattable(f"l4_no_question:{fact['l4']['kind']}")
    # a Q&A item asks its stored question; one without it is counted, not guessed from its text
    qa = {"l4": {"kind": "qa", "question": "Who founded Rome?", "claim": "Romulus, by legend."}}
    assert chat_messages("L4", qa) == [{"role": "user", "content": "Who founded Rome?"},
                                       {"role": "assistant", "content": "Romulus, by legend."}]
    assert chat_messages("L4", {"l4": {"kind": "qa", "claim": "Romulus."}}) == Unformattable("l4_incomplete_fields:qa")


def test_parquet_chat_output_reads_back(tiers: TierStore, tmp_path: Path) -> None:
    base = default_spec("sft", 1_000_000)
    m = export_stage(tiers, dataclasses.replace(base, output_format="parquet"), tmp_path / "sft")
    assert all(s.path.endswith(".parquet") for s in m.shards)
    table = pq.read_table(tmp_path / "sft" / m.shards[0].path)
    assert table.num_rows == m.delivered_docs > 0
    assert table.schema.field("messages").type.value_type.names == ["role", "content"]
    jsonl = export_stage(tiers, base, tmp_path / "sft-jsonl")
    assert sorted(map(json.dumps, table.to_pylist())) == sorted(map(json.dumps, read_export(tmp_path / "sft-jsonl")[1]))
    assert jsonl.selection_sha256 == m.selection_sha256
    again = export_stage(tiers, dataclasses.replace(base, output_format="parquet"), tmp_path / "sft-again")
    assert [s.sha256 for s in again.shards] == [s.sha256 for s in m.shards]


# ---------------------------------------------------------------- decay, RAG, versions


def test_decay_takes_the_top_of_l2_and_repeats_l3_twice(tiers: TierStore, llm, embedder, tmp_path: Path) -> None:
    m = export_stage(tiers, default_spec("decay", 1_000_000), tmp_path / "d")
    _, rows = read_export(tmp_path / "d")
    l2 = records(tiers, "L2")
    top = set()
    for domain in ("en", "zh", "math", "code"):
        ranked = sorted((d for d in l2.values() if d["domain"] == domain), key=lambda d: -d["score"])
        top |= {d["doc_id"] for d in ranked[: math.ceil(0.3 * len(ranked))]}
    assert top == {"en-burma", "en-rugby", "zh-physics", "math-kaon", "code-textwrap"}
    counts = Counter((r["tier"], r["doc_id"]) for r in rows)
    assert {i for t, i in counts if t == "L2"} == top and {n for (t, _), n in counts.items() if t == "L2"} == {1}
    assert {i: n for (t, i), n in counts.items() if t == "L3"} == dict.fromkeys(records(tiers, "L3"), 2)
    assert m.short  # 1M tokens is far more than these documents hold
    assert m.versions == {
        "l1.recipe": ["recipe-A"],
        "l2.annotator.backend": ["transformers"],
        "l2.annotator.model": ["smollm2-135m"],
        "l2.classifier_version": ["clf-code-v1", "clf-en-v1", "clf-math-v1", "clf-zh-v1"],
        "l2.prompt_version": ["l2-2025.1"],
        "l3.backend": ["transformers"],
        "l3.embedder": [embedder.version],
        "l3.llm": [llm.model_id],
    }
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["versions"] == m.versions


def test_rag_exports_every_l4_item_with_its_evidence_and_the_index(tiers: TierStore, llm, tmp_path: Path) -> None:
    m = export_stage(tiers, default_spec("rag"), tmp_path / "rag")
    _, rows = read_export(tmp_path / "rag")
    l4 = records(tiers, "L4")
    assert m.delivered_docs == len(rows) == len(l4) and not m.short
    index_manifest = json.loads((index_dir(tiers) / "manifest.json").read_text())
    assert m.index == {"path": str(index_dir(tiers)), "exists": True, **index_manifest}
    with open(index_dir(tiers) / "items.jsonl", encoding="utf-8") as fh:
        assert {json.loads(line)["doc_id"] for line in fh} <= {r["doc_id"] for r in rows}
    for row in rows:
        rec = l4[row["doc_id"]]
        assert row["item"] == rec["signals"]["l4"] and row["parent_ids"] == rec["parent_ids"]
        assert row["text"] == rec["text"]
    assert m.versions["l4.llm"] == [llm.model_id] and m.versions["l4.backend"] == ["transformers"]


def test_report_shows_the_l3_l4_rejections(tiers: TierStore, tmp_path: Path) -> None:
    page = write_report(tiers, tmp_path / "report.html").read_text()
    assert all(f'<span class="badge on">{t}</span>' in page for t in ("L2", "L3", "L4"))
    for tier in ("L3", "L4"):
        reasons = Counter((r["domain"], r["stage"], r["reason"]) for ref in tiers.partitions(tier, "rejected")
                          for r in tiers.read_docs(ref, "rejected"))
        assert reasons
        for (domain, stage, reason), n in reasons.items():
            assert f'<td>{domain}</td><td>{stage}</td><td>{reason}</td><td class="num">{n}</td>' in page
