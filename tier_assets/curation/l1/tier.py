"""L1 for one partition as a list of stages: L0 records -> cleaned, filtered, deduplicated L1 records.

Flow: URL safety -> mappers -> empty-after-cleaning -> language id -> content
safety (terms, toxicity) -> rule filters ->
decontamination -> PII redaction -> dedup (exact, MinHash, semantic) against the
same domain's earlier batches. Everything not kept goes to L1's rejected set with
the stage and reason, so kept + rejected = L0 input for every partition.

Dedup needs the *candidates* (documents that passed every other stage) of earlier
batches. Their signatures are cached per batch and recipe fingerprint under
``{root}/index/dedup``; a missing cache is rebuilt from that batch's L0, so the
result does not depend on the order in which partitions are materialized.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tier_assets.curation.atomic import atomic_path
from tier_assets.curation.engines import engine_from_env
from tier_assets.curation.l1.decontam import Decontaminator
from tier_assets.curation.l1.dedup import Dedup, compute_signatures
from tier_assets.curation.l1.filters import default_filters
from tier_assets.curation.l1.langid import LanguageIdentifier
from tier_assets.curation.l1.mappers import default_mappers
from tier_assets.curation.l1.pii import PIIRedactor
from tier_assets.curation.l1.safety import ContentSafetyFilter, ToxicitySignal, URLSafetyFilter
from tier_assets.curation.l1.settings import L1Settings
from tier_assets.curation.pipeline import (
    Doc,
    Filter,
    Models,
    Progress,
    Stage,
    StageStats,
    StepResult,
)
from tier_assets.curation.schema import derive_doc_id, loads
from tier_assets.curation.storage import PartitionRef, TierStore


class EmptyAfterCleaning(Filter):
    """Rejects documents the mappers emptied (nothing left to filter or train on)."""

    name = "empty_after_cleaning"

    def check(self, doc: Doc) -> tuple[str, str] | None:
        return None if doc["text"].strip() else ("empty_after_cleaning", "no text left after the mappers")


def from_l0(row: dict[str, Any]) -> Doc:
    """An L1 working document from an L0 record: new id, parent pointer, dict-valued JSON columns."""
    doc = dict(row)
    doc["parent_ids"] = [row["doc_id"]]
    doc["doc_id"] = derive_doc_id("L1", [row["doc_id"]])
    doc["tier"] = "L1"
    doc["signals"] = loads(row.get("signals"))
    doc["models"] = loads(row.get("models"))
    return doc


def candidate_steps(settings: L1Settings) -> list[Stage]:
    """Every L1 record stage (everything before dedup), in order."""
    return [
        URLSafetyFilter(settings.safety),
        *default_mappers(settings.domain),
        EmptyAfterCleaning(),
        LanguageIdentifier(settings.langid),
        ContentSafetyFilter(settings.safety),
        ToxicitySignal(settings.safety),
        *default_filters(settings.domain, settings.filters),
        Decontaminator(settings.decontam),
        PIIRedactor(settings.pii),
    ]


def read_l0_docs(store: TierStore, domain: str, batch: str) -> list[Doc]:
    return [from_l0(r) for r in store.read(PartitionRef("L0", domain, batch)).to_pylist()]


def signatures_path(store: TierStore, domain: str, batch: str, fingerprint: str) -> Path:
    return store.root / "index" / "dedup" / f"domain={domain}" / f"batch={batch}" / f"{fingerprint}.parquet"


def _save_signatures(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def earlier_signatures(store: TierStore, settings: L1Settings, batch: str, embedder: Any,
                       progress: Progress | None = None) -> list[pa.Table]:
    """Signatures of the candidates of every earlier batch of the domain (cached or rebuilt from L0)."""
    fingerprint = settings.fingerprint
    tables = []
    for ref in store.partitions("L0"):
        if ref.domain != settings.domain or ref.batch >= batch:
            continue
        path = signatures_path(store, ref.domain, ref.batch, fingerprint)
        if not path.exists():
            if progress:
                progress(f"rebuilding dedup signatures of earlier batch {ref.batch}")
            docs = read_l0_docs(store, ref.domain, ref.batch)
            candidates = engine_from_env().pipeline(candidate_steps(settings), settings.records_per_batch).run(docs).kept
            _save_signatures(path, compute_signatures(candidates, settings.dedup, embedder))
        tables.append(pq.read_table(path))
    return tables


@dataclass
class L1Stats:
    l0_input: int = 0
    kept: int = 0
    rejected: int = 0
    stages: dict[str, StageStats] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    mappers_changed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def l1_stages(settings: L1Settings, earlier: list[pa.Table]) -> list[Stage]:
    """L1 as a list of stages: the record stages, then dedup against the domain's earlier batches."""
    return [*candidate_steps(settings), Dedup(settings.dedup, earlier)]


def run_l1_partition(store: TierStore, settings: L1Settings, batch: str, models: Models | None = None,
                     progress: Progress | None = None) -> tuple[StepResult, L1Stats]:
    """Run L1 for (settings.domain, batch) and write kept + rejected atomically."""
    start = time.perf_counter()
    domain = settings.domain
    models = models or Models()
    docs = read_l0_docs(store, domain, batch)
    stats = L1Stats(l0_input=len(docs))
    if progress:
        progress(f"L1 {domain}/{batch}: {len(docs)} L0 documents in")
    if settings.dedup.semantic:
        models.require("embedder", "dedup")
    earlier = earlier_signatures(store, settings, batch, models.embedder, progress)
    stages = l1_stages(settings, earlier)
    pipeline = engine_from_env().pipeline(stages, settings.records_per_batch)
    result = pipeline.run(docs, progress, models)
    dedup_step = stages[-1]
    assert isinstance(dedup_step, Dedup)
    if dedup_step.signatures is not None:
        _save_signatures(signatures_path(store, domain, batch, settings.fingerprint), dedup_step.signatures)
    for doc in result.kept + result.rejected:
        doc["n_chars"] = len(doc["text"])
        doc.setdefault("models", {})["l1"] = {"recipe": settings.fingerprint}
    ref = PartitionRef("L1", domain, batch)
    store.write_partition(ref, result.kept, result.rejected)
    stats.kept, stats.rejected = len(result.kept), len(result.rejected)
    stats.stages = pipeline.stats
    for doc in result.rejected:
        key = f"{doc['stage']}:{doc['reason']}"
        stats.reasons[key] = stats.reasons.get(key, 0) + 1
    for doc in result.kept + result.rejected:
        for name in doc.get("signals", {}).get("mappers", []):
            stats.mappers_changed[name] = stats.mappers_changed.get(name, 0) + 1
    stats.seconds = time.perf_counter() - start
    return result, stats
