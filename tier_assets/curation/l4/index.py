"""A FAISS index over L4 items, saved to disk with a sidecar mapping rows to items.

Layout of an index directory (written to a temporary sibling and renamed into
place, so a reader never sees half an index)::

    vectors.faiss   the faiss index (CPU form; moved to the GPU on load when one is visible)
    items.jsonl     one item per row, in index order: doc_id, domain, batch, kind, topic, support, text,
                    evidence pointers, parent_ids
    manifest.json   embedder version, dimension, index kind, nlist / nprobe, item count

Exact ``flat`` search is the default up to ``AUTO_IVF_FROM`` items; above it
``auto`` builds an IVF index (nlist about 4 * sqrt(n)), whose recall is set by
``nprobe``. Queries must be embedded by the same model, so loading checks the
embedder version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from tier_assets.curation.atomic import atomic_path
from tier_assets.curation.l4.ask_routing import is_chinese, lexical_scores
from tier_assets.curation.models.embedder import Embedder
from tier_assets.curation.models.vectors import VectorIndex, gpu_available, make_index
from tier_assets.curation.pipeline import Doc
from tier_assets.curation.schema import loads

AUTO_IVF_FROM = 50_000
MIN_POINTS_PER_CELL = 39  # faiss warns below this many training points per IVF cell
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Hit:
    score: float  # embedding cosine of query and item; for a Chinese question, the lexical share (ask_routing)
    item: dict[str, Any]
    match: str = "embedding"  # or "zh-lexical"


def sidecar_item(record: Doc) -> dict[str, Any]:
    """What a search returns for an L4 record: the item, its evidence and lineage entry points."""
    signals = record.get("signals")
    l4 = (signals if isinstance(signals, dict) else loads(signals)).get("l4") or {}
    return {"doc_id": record["doc_id"], "domain": record["domain"], "batch": record["batch"], "text": record["text"],
            "kind": l4.get("kind"), "subject": l4.get("subject"), "topic": l4.get("topic"),
            "support": l4.get("support"), "conflicts_with": l4.get("conflicts_with") or [],
            "evidence": l4.get("evidence") or [], "parent_ids": list(record.get("parent_ids") or [])}


def ivf_nlist(n: int, requested: int | None = None) -> int:
    """IVF cells for ``n`` vectors: ``requested`` or about 4 * sqrt(n), with >= 39 training points per cell."""
    want = requested or int(round(4 * math.sqrt(n)))
    return max(1, min(want, n // MIN_POINTS_PER_CELL))


class L4Index:
    """Items plus their vectors in a faiss inner-product index (cosine: the vectors are normalized)."""

    def __init__(self, vectors: VectorIndex, items: list[dict[str, Any]], embedder: Embedder,
                 settings: dict[str, Any]):
        if vectors.ntotal != len(items):
            raise ValueError(f"index has {vectors.ntotal} vectors but {len(items)} items")
        self.vectors = vectors
        self.items = items
        self.embedder = embedder
        self.settings = settings

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, items: list[dict[str, Any]], embedder: Embedder,
                     kind: str = "auto", nlist: int | None = None, nprobe: int = 16,
                     use_gpu: bool | None = None) -> L4Index:
        """An index over precomputed (normalized) ``vectors``, one per item; ``kind``: flat, ivf or auto."""
        n = len(items)
        if kind not in ("flat", "ivf", "auto"):
            raise ValueError(f"kind must be flat, ivf or auto, got {kind!r}")
        if kind == "auto":
            kind = "ivf" if n >= AUTO_IVF_FROM else "flat"
        cells = ivf_nlist(n, nlist) if kind == "ivf" else 0
        if kind == "ivf" and n < MIN_POINTS_PER_CELL:
            kind, cells = "flat", 0  # too few items to train even one cell well
        index = make_index(embedder.dim, kind, nlist=max(cells, 1), nprobe=nprobe, use_gpu=use_gpu)
        if n:
            index.add(vectors)
        settings = {"kind": kind, "nlist": cells, "nprobe": nprobe if kind == "ivf" else 0}
        return cls(index, items, embedder, settings)

    @classmethod
    def build(cls, records: Sequence[Doc], embedder: Embedder, kind: str = "auto", nlist: int | None = None,
              nprobe: int = 16, use_gpu: bool | None = None) -> L4Index:
        """Embed the L4 records' texts and index them."""
        items = [sidecar_item(r) for r in records]
        vectors = embedder.encode([i["text"] for i in items])
        return cls.from_vectors(vectors, items, embedder, kind, nlist, nprobe, use_gpu)

    def __len__(self) -> int:
        return len(self.items)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` items most similar to ``query``, best first, routed by the query's language (``ask_routing``).

        A Chinese query is matched lexically against the Chinese items; any other by embedding cosine
        against the other items (the embedder is English).
        """
        if not self.items or k <= 0:
            return []
        chinese = [is_chinese(item["text"]) for item in self.items]
        if is_chinese(query):
            rows = [i for i, zh in enumerate(chinese) if zh]
            scores = lexical_scores(query, [self.items[i]["text"] for i in rows])
            about = lexical_scores(query, [self.items[i].get("subject") or "" for i in rows])  # ties: its subject
            ranked = sorted(zip(scores, about, rows, strict=True),
                            key=lambda p: (-p[0], -p[1], len(self.items[p[2]]["text"]), p[2]))
            return [Hit(score, self.items[i], "zh-lexical") for score, _, i in ranked[:k]]
        fetch = min(len(self.items), k + sum(chinese))  # enough to fill k after leaving Chinese items out
        sims, ids = self.vectors.search(self.embedder.encode([query]), fetch)
        hits = [Hit(float(s), self.items[int(i)]) for s, i in zip(sims[0], ids[0], strict=True)
                if i >= 0 and not chinese[int(i)]]
        return hits[:k]

    def save(self, directory: str | Path) -> Path:
        """Write the index directory atomically (temp sibling, then rename); returns its path."""
        target = Path(directory)
        with atomic_path(target) as tmp:
            tmp.mkdir()
            index = self.vectors.index
            faiss.write_index(faiss.index_gpu_to_cpu(index) if self.vectors.device == "cuda" else index,
                              str(tmp / "vectors.faiss"))
            with open(tmp / "items.jsonl", "w", encoding="utf-8") as fh:
                for item in self.items:
                    fh.write(json.dumps(item, ensure_ascii=False) + "\n")
            manifest = {"format_version": FORMAT_VERSION, "embedder": self.embedder.version, "dim": self.vectors.dim,
                        "count": len(self.items), **self.settings}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        return target

    @classmethod
    def load(cls, directory: str | Path, embedder: Embedder, use_gpu: bool | None = None) -> L4Index:
        """Read an index directory; raises ``ValueError`` if it was built with another embedder."""
        directory = Path(directory)
        manifest = json.loads((directory / "manifest.json").read_text())
        if manifest["embedder"] != embedder.version:
            raise ValueError(f"index {directory} was built with {manifest['embedder']}, not {embedder.version}")
        cpu_index = faiss.read_index(str(directory / "vectors.faiss"))
        with open(directory / "items.jsonl", encoding="utf-8") as fh:
            items = [json.loads(line) for line in fh]
        want_gpu = gpu_available() if use_gpu is None else use_gpu
        if want_gpu:
            resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(resources, 0, cpu_index)
            if manifest["kind"] == "ivf":
                faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", manifest["nprobe"])
            vectors = VectorIndex(index, manifest["dim"], manifest["kind"], "cuda", resources)
        else:
            if manifest["kind"] == "ivf":
                faiss.ParameterSpace().set_index_parameter(cpu_index, "nprobe", manifest["nprobe"])
            vectors = VectorIndex(cpu_index, manifest["dim"], manifest["kind"], "cpu")
        settings = {k: manifest[k] for k in ("kind", "nlist", "nprobe")}
        return cls(vectors, items, embedder, settings)
