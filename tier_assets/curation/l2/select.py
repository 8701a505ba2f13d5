"""L2 for one partition: score every L1 document with the domain's classifier, select, write.

Selected documents are the L2 tier; the others go to L2's rejected set with
their score and the rule that excluded them, so kept + rejected = L1 input.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tier_assets.curation.l2.distill import QualityClassifier
from tier_assets.curation.l2.score import score_and_select
from tier_assets.curation.l2.settings import L2Settings
from tier_assets.curation.pipeline import Doc
from tier_assets.curation.schema import derive_doc_id, loads
from tier_assets.curation.storage import PartitionRef, TierStore


def from_l1(row: dict[str, Any]) -> Doc:
    """An L2 working document from an L1 record: new id, parent pointer, dict-valued JSON columns."""
    doc = dict(row)
    doc["parent_ids"] = [row["doc_id"]]
    doc["doc_id"] = derive_doc_id("L2", [row["doc_id"]])
    doc["tier"] = "L2"
    doc["signals"] = loads(row.get("signals")) or {}
    doc["models"] = loads(row.get("models")) or {}
    return doc


@dataclass
class L2Stats:
    l1_input: int = 0
    kept: int = 0
    rejected: int = 0
    injections: int = 0
    score_histogram: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def process_l2_partition(store: TierStore, recipe: L2Settings, batch: str, classifier: QualityClassifier,
                         progress: Callable[[str], None] | None = None) -> L2Stats:
    """Score and select (recipe.domain, batch); write L2 kept and rejected atomically."""
    start = time.perf_counter()
    domain = recipe.domain
    docs = [from_l1(r) for r in store.read(PartitionRef("L1", domain, batch)).to_pylist()]
    if progress:
        progress(f"L2 {domain}/{batch}: {len(docs)} L1 documents, classifier {classifier.version}")
    result = score_and_select(docs, classifier, recipe.threshold, recipe.top_fraction, recipe.injection_penalty,
                              progress)
    ref = PartitionRef("L2", domain, batch)
    store.write(ref, result.kept)
    store.write(ref, result.rejected, kind="rejected")
    scores = np.array([d["score"] for d in docs], dtype=np.float64)
    hist, edges = np.histogram(scores, bins=5, range=(0.0, 5.0))
    return L2Stats(
        l1_input=len(docs), kept=len(result.kept), rejected=len(result.rejected),
        injections=sum(1 for d in docs if d["signals"]["l2"]["injections"]),
        score_histogram={f"{lo:.0f}-{hi:.0f}": int(n) for lo, hi, n in zip(edges, edges[1:], hist, strict=False)},
        seconds=time.perf_counter() - start,
    )
