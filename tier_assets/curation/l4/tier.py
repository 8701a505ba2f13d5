"""L4 over the stored tiers: build a partition, check its evidence from the files, index all of L4, answer.

``build_stored_partition`` extracts from the partition's L2 and L3 documents; its LLM answers
are cached under ``{data_root}/cache/llm/l4/{domain}/{batch}.jsonl``, so a killed run resumes
paying only for what is missing.
``evidence_check`` re-reads what was written: every kept item's pointers must
resolve to exactly the text they cite in the stored source documents.
``build_index`` merges items across every batch (the same fact seen in two
batches becomes one item with both pointers) and writes the FAISS index that
``ask`` searches; each answer comes with its evidence text and the lineage of
the evidence document down to its L0 source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tier_assets.curation.catalog import connect
from tier_assets.curation.l4.build import L4Stats, build_l4_partition
from tier_assets.curation.l4.consistency import CONFLICT, check_consistency, unlinked_conflicts
from tier_assets.curation.l4.index import L4Index
from tier_assets.curation.l4.organize import organize
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.l4.verify import STALE, evidence_problems, without_stale_evidence
from tier_assets.curation.llm_cache import LLMCache, cache_path
from tier_assets.curation.models.embedder import Embedder
from tier_assets.curation.models.llm import LLM
from tier_assets.curation.pipeline import Doc
from tier_assets.curation.stats import run_sql
from tier_assets.curation.storage import PartitionRef, TierStore

SOURCE_TIERS = ("L2", "L3")


def index_dir(store: TierStore) -> Path:
    return store.root / "index" / "l4"


def build_stored_partition(store: TierStore, domain: str, batch: str, llm: LLM | None, embedder: Embedder,
                           config: L4Settings, progress: Callable[[str], None] | None = None,
                           cache: LLMCache | None = None) -> L4Stats:
    """L4 for (domain, batch) from its L2 and L3 documents; empty sources give an empty, valid partition.

    ``cache`` defaults to the partition's LLM cache under the data root.
    """
    docs = [d for tier in SOURCE_TIERS for d in store.read_docs(PartitionRef(tier, domain, batch))]
    cache = cache if cache is not None else LLMCache(cache_path(store.root, "L4", domain, batch))
    if progress:
        progress(f"L4 {domain}/{batch}: {len(docs)} L2 + L3 documents, budget {config.budget_tokens} tokens; "
                 f"{len(cache.answers)} LLM answers cached in {cache.path}")
    kept, rejected, stats = build_l4_partition(docs, llm, embedder, config, progress, cache)
    ref = PartitionRef("L4", domain, batch)
    store.write_partition(ref, kept, rejected)
    return stats


def source_texts(store: TierStore, doc_ids: set[str], domain: str, batch: str) -> dict[str, str]:
    """Texts of ``doc_ids``: from the partition's L2 / L3 files, else from any tier through the catalog."""
    found = {}
    for tier in SOURCE_TIERS:
        table = store.read(PartitionRef(tier, domain, batch), columns=["doc_id", "text"])
        found.update({i: t for i, t in zip(table["doc_id"].to_pylist(), table["text"].to_pylist(), strict=True)
                      if i in doc_ids})
    missing = sorted(doc_ids - set(found))
    if missing:
        con = connect(store)
        try:
            rows = con.execute("SELECT doc_id, text FROM all_records WHERE list_contains($ids, doc_id)",
                               {"ids": missing}).fetchall()
        finally:
            con.close()
        found.update(dict(rows))
    return found


@dataclass
class EvidenceReport:
    items: int
    pointers: int
    problems: list[str]


def evidence_check(store: TierStore, domain: str, batch: str) -> EvidenceReport:
    """Every kept L4 item of the partition, as written: each pointer resolves to exactly the text it cites."""
    items = store.read_docs(PartitionRef("L4", domain, batch))
    pointers = [p for item in items for p in (item["signals"].get("l4") or {}).get("evidence") or []]
    texts = source_texts(store, {str(p.get("doc_id")) for p in pointers}, domain, batch)
    problems = [f"{item['doc_id']}: {p}" for item in items for p in evidence_problems(item, texts)]
    return EvidenceReport(len(items), len(pointers), problems)


def fresh_records(store: TierStore) -> tuple[list[Doc], list[str]]:
    """The L4 records of every partition, each with only the pointers whose source document has not changed
    since extraction, and the ids of the records left with none (``stale_evidence``: never indexed)."""
    records: list[Doc] = []
    stale: list[str] = []
    for ref in store.partitions("L4"):
        part = store.read_docs(ref)
        ids = {str(p.get("doc_id")) for r in part for p in (r["signals"].get("l4") or {}).get("evidence") or []}
        texts = source_texts(store, ids, ref.domain, ref.batch)
        for record in part:
            fresh = without_stale_evidence(record, texts)
            if fresh is None:
                stale.append(str(record["doc_id"]))
            else:
                records.append(fresh)
    return records, stale


def build_index(store: TierStore, embedder: Embedder, config: L4Settings | None = None,
                kind: str = "auto") -> tuple[L4Index, dict[str, Any]]:
    """Merge the L4 items of every partition (across batches) and write the index under ``index/l4``.

    Items whose every evidence document changed after extraction are left out (``stale_evidence`` in the stats);
    re-materializing their L4 partition extracts them again from the new text. Conflicts between items of
    different batches are resolved by the same policy as in a partition (``l4_conflict``: left out).
    """
    records, stale = fresh_records(store)
    merged, stats = organize(records, embedder, config or L4Settings())
    kept, conflicting, consistency = check_consistency(merged)  # across batches: the rules' policy again
    index = L4Index.build(kept, embedder, kind=kind)
    index.save(index_dir(store))
    return index, {**stats, "index": index.settings, "items": len(index), "path": str(index_dir(store)),
                   STALE: len(stale), "stale_items": stale[:20], CONFLICT: len(conflicting),
                   "conflicts": consistency["conflicts"]}


def conflict_check(store: TierStore, domain: str, batch: str) -> tuple[int, list[str]]:
    """The partition's kept items, as written: (items, kept pairs the rules find in conflict without a link)."""
    items = store.read_docs(PartitionRef("L4", domain, batch))
    return len(items), unlinked_conflicts(items)


def ask(store: TierStore, question: str, embedder: Embedder, k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` L4 items nearest ``question``, each with its evidence and the evidence's lineage to L0."""
    path = index_dir(store)
    if not (path / "manifest.json").exists():
        raise FileNotFoundError(f"no L4 index at {path}: materialize l4_index (or run the demo) first")
    answers = []
    for hit in L4Index.load(path, embedder).search(question, k):
        evidence = []
        for pointer in hit.item["evidence"]:
            rows = run_sql(store, "lineage", {"doc_id": pointer["doc_id"]})
            lineage = [{key: row[key] for key in ("depth", "tier", "doc_id", "source", "source_file", "record_index",
                                                  "byte_offset", "url", "warc_record_id")}
                       for row in rows if row["direction"] == "down"]
            evidence.append({**pointer, "lineage": lineage})
        answers.append({"score": round(hit.score, 4), "match": hit.match,
                        **{k: hit.item.get(k) for k in ("doc_id", "kind", "subject", "topic", "support",
                                                        "conflicts_with", "domain", "text")},
                        "evidence": evidence})
    return answers
