"""L4 bad input: evidence documents changed after extraction, spans across document ends; Q&A items' questions.

Real web text (the shared RedPajama sample) through the stored L4 tier, rule extraction only (no LLM).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.extract import rule_items
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.l4.tier import build_index, build_stored_partition, evidence_check
from tier_assets.curation.l4.verify import pointer_problems, verify_items
from tier_assets.curation.storage import PartitionRef, TierStore

RULES_ONLY = L4Settings(llm_extraction=False)


def _doc(doc_id: str, text: str, **extra) -> dict:
    return {"doc_id": doc_id, "parent_ids": [], "tier": "L2", "domain": "en", "batch": "b1", "text": text,
            "score": 3.0, "signals": {}, "models": {}, **extra}


def _burma(shared_data: Path) -> str:
    rows = (shared_data / "web" / "redpajama-cc-2023-06-sample.jsonl").read_text().splitlines()
    return json.loads(rows[8])["text"]


def test_items_carry_the_hash_of_their_source(shared_data: Path, embedder):
    text = _burma(shared_data)
    kept, _, _ = build_l4_partition([_doc("burma", text)], None, embedder, RULES_ONLY)
    pointer = kept[0]["signals"]["l4"]["evidence"][0]
    assert len(pointer["source_sha256"]) == 64 and pointer_problems(pointer, {"burma": text}) == []
    changed = text + " An appended sentence."  # the cited span still reads the same: only the hash can tell
    (problem,) = pointer_problems(pointer, {"burma": changed})
    assert problem.startswith("stale_evidence: evidence doc burma changed after extraction")


def test_a_span_across_the_end_of_its_document_is_rejected(embedder):
    first, second = "Kamas is an extinct Samoyedic language.", " Selkup is an endangered language."
    docs = [_doc("a", first), _doc("b", second)]
    kept, _, _ = build_l4_partition(docs, None, embedder, RULES_ONLY)
    (item,) = rule_items(docs[0], RULES_ONLY)
    item.end = len(first) + len(second)  # a pointer reaching into the next document of the batch
    item.cited = first + second
    passed, failed = verify_items([item], {"a": first, "b": second}, None, RULES_ONLY)
    assert passed == [] and failed[0][1] == "span_mismatch" and "never crosses into another document" in failed[0][2]
    assert len(kept) == 2


def test_stale_items_fail_the_evidence_check_and_leave_the_index(shared_data: Path, tmp_path: Path, embedder):
    store = TierStore(tmp_path / "data")
    text = _burma(shared_data)
    l2 = PartitionRef("L2", "en", "b1")
    store.write(l2, [_doc("burma", text), _doc("kamas", "Kamas is an extinct Samoyedic language (Uralic family).")])
    build_stored_partition(store, "en", "b1", None, embedder, RULES_ONLY)
    assert evidence_check(store, "en", "b1").problems == []
    _, fresh = build_index(store, embedder)
    assert fresh["stale_evidence"] == 0 and fresh["items"] >= 2

    path = store.partition_path(l2)
    table = pq.read_table(path)
    rows = table.to_pylist()
    for row in rows:
        if row["doc_id"] == "burma":
            row["text"] += " Edited after extraction."
    pq.write_table(table.from_pylist(rows, schema=table.schema), path)
    problems = evidence_check(store, "en", "b1").problems
    burma_items = [r for r in store.read_docs(PartitionRef("L4", "en", "b1")) if r["parent_ids"] == ["burma"]]
    assert len(problems) == len(burma_items) >= 1 and all("stale_evidence" in p for p in problems)
    index, stale = build_index(store, embedder)
    assert stale["stale_evidence"] == len(burma_items) and stale["items"] == fresh["items"] - len(burma_items)
    assert all(hit.item["parent_ids"] == ["kamas"] for hit in index.search("Kamas language", 5))

    build_stored_partition(store, "en", "b1", None, embedder, RULES_ONLY)  # re-organized from the new text
    assert evidence_check(store, "en", "b1").problems == []
    assert build_index(store, embedder)[1]["stale_evidence"] == 0


def test_qa_items_carry_their_question(embedder):
    l3 = _doc("qa1", "Q: What is Kamas? A: Kamas is an extinct Samoyedic language of the Uralic family.", tier="L3",
              signals={"l3": {"format": "qa", "fields": {
                  "question": "What is Kamas?",
                  "answer": "Kamas is an extinct Samoyedic language of the Uralic family."}}})
    kept, _, _ = build_l4_partition([l3], None, embedder, RULES_ONLY)
    qa = next(r["signals"]["l4"] for r in kept if r["signals"]["l4"]["kind"] == "qa")
    assert qa["question"] == "What is Kamas?"
    assert qa["claim"] == "Kamas is an extinct Samoyedic language of the Uralic family."
    assert all("question" not in r["signals"]["l4"] for r in kept if r["signals"]["l4"]["kind"] != "qa")
