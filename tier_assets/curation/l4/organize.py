"""L4 organization: one record per distinct piece of knowledge, with all its evidence, tagged by topic.

Items (or already organized L4 records, e.g. from several batches) of the same
domain and kind whose embeddings have cosine >= ``merge_threshold`` are one
item: FAISS finds the neighbours (GPU when present) and union-find joins them.
The merged record keeps every distinct evidence pointer, counts its support
(distinct evidence documents) and its members (items merged). The result does
not depend on input order: inputs are sorted first, and the representative
(whose text and id the record keeps) is the earliest by (batch, evidence
doc_id, span), so re-organizing with more batches keeps earlier ids. The topic
is the nearest of a small per-domain set of topic descriptions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from tier_assets.curation.l4.extract import Item
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.models.embedder import Embedder
from tier_assets.curation.models.vectors import make_index, range_neighbors
from tier_assets.curation.pipeline import Doc
from tier_assets.curation.schema import derive_doc_id, loads, stable_id

STAGE = "l4"
_WEB_TOPICS = {
    "science": "natural science: physics, chemistry, biology, astronomy and earth science",
    "health": "health, medicine, diseases, nutrition and the human body",
    "technology": "technology, computers, software, the internet and engineering",
    "history": "history, historical events, wars, empires and historical figures",
    "geography": "geography, countries, cities, places and travel",
    "society": "politics, law, government, society and religion",
    "economy": "business, the economy, finance, markets and companies",
    "culture": "arts, literature, music, film, culture and entertainment",
    "sports": "sports, games, athletes and competitions",
    "education": "education, schools, learning and languages",
    "nature": "animals, plants, nature and the environment",
    "mathematics": "mathematics, numbers, equations and proofs",
}
TOPICS: dict[str, dict[str, str]] = {
    "en": _WEB_TOPICS,
    "zh": _WEB_TOPICS,
    "math": {
        "algebra": "algebra: equations, polynomials, groups, rings and fields",
        "analysis": "calculus and analysis: limits, derivatives, integrals, series and functions",
        "geometry": "geometry and topology: shapes, spaces, manifolds, curves and surfaces",
        "probability": "probability and statistics: random variables, distributions and estimation",
        "number_theory": "number theory: primes, divisibility, integers and congruences",
        "linear_algebra": "linear algebra: vectors, matrices, eigenvalues and linear maps",
        "combinatorics": "combinatorics and discrete mathematics: counting, graphs and sequences",
        "logic": "logic and set theory: proofs, sets, relations and axioms",
        "applied": "applied mathematics and physics: differential equations, mechanics and models",
    },
    "code": {
        "algorithms": "algorithms and data structures: sorting, searching, trees, lists and queues",
        "text": "text and string processing: parsing, formatting, regular expressions and encodings",
        "system": "files, paths, processes and the operating system",
        "network": "networking, HTTP, sockets, URLs and the web",
        "concurrency": "concurrency: threads, locks, async tasks and queues",
        "data_formats": "data formats and serialization: JSON, XML, CSV and configuration files",
        "testing": "testing, debugging, logging and error handling",
        "numerics": "math and numerics: numbers, arithmetic, decimals and random values",
        "objects": "classes, objects, attributes and interfaces",
        "datetime": "dates, times, calendars and time zones",
        "security": "security, hashing and cryptography",
    },
}
_TOPIC_CACHE: dict[tuple[str, str], tuple[list[str], np.ndarray]] = {}


def item_record(item: Item, models: dict[str, Any]) -> Doc:
    """An L4 record holding one verified item and its single evidence pointer (a Q&A also its ``question``)."""
    question = item.question()
    return {
        "doc_id": derive_doc_id("L4", [item.doc_id],
                                variant=f"{item.kind}:{item.start}:{item.end}:{stable_id(item.text)}"),
        "parent_ids": [item.doc_id], "tier": "L4", "domain": item.domain, "batch": item.batch, "text": item.text,
        "title": item.subject or item.term,
        "signals": {STAGE: {"kind": item.kind, "subject": item.subject, "claim": item.claim(),
                            "evidence": [item.pointer()], "support": 1, "members": 1,
                            "methods": [item.method], "term": item.term, "verification": item.verification,
                            **({"question": question} if question else {})}},
        "models": dict(models),
    }


def _with_embedder(record: Doc, embedder: Embedder) -> dict[str, Any]:
    """The record's ``models`` with the embedder that merged and tagged it under ``l4``."""
    models = record.get("models")
    models = dict(models) if isinstance(models, dict) else loads(models) or {}
    models["l4"] = {**(models.get("l4") or {}), "embedder": embedder.version}
    return models


def _l4(record: Doc) -> dict[str, Any]:
    signals = record.get("signals")
    return (signals if isinstance(signals, dict) else loads(signals)).get(STAGE) or {}


def _order(record: Doc) -> tuple[Any, ...]:
    first = _l4(record)["evidence"][0]
    return (str(record["batch"]), str(first["doc_id"]), int(first["start"]), int(first["end"]),
            _l4(record)["kind"], record["text"], str(record["doc_id"]))


def topic_labels(embedder: Embedder, domain: str) -> tuple[list[str], np.ndarray]:
    """Topic names of ``domain`` and the embeddings of their descriptions (cached per embedder)."""
    key = (embedder.version, domain)
    if key not in _TOPIC_CACHE:
        topics = TOPICS.get(domain, _WEB_TOPICS)
        _TOPIC_CACHE[key] = (list(topics), embedder.encode(list(topics.values())))
    return _TOPIC_CACHE[key]


def _clusters(vectors: np.ndarray, terms: Sequence[str | None], threshold: float) -> list[list[int]]:
    """Connected components of the graph "cosine >= threshold", each sorted, in order of their first member.

    Two items about different subjects (or terms) are never joined, however alike
    their wording (``insort_left`` and ``insort_right`` share a docstring).
    """
    parent = list(range(len(vectors)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    index = make_index(vectors.shape[1], "flat")
    index.add(vectors)
    lims, ids, _ = range_neighbors(index, vectors, threshold)
    for i in range(len(vectors)):
        for j in ids[lims[i]:lims[i + 1]]:
            ti, tj = terms[i], terms[int(j)]
            if ti and tj and ti.lower() != tj.lower():
                continue
            a, b = find(i), find(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(vectors)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def organize(inputs: Sequence[Item | Doc], embedder: Embedder, config: L4Settings | None = None,
             models: dict[str, Any] | None = None) -> tuple[list[Doc], dict[str, Any]]:
    """Merge duplicates and tag topics: (L4 records, stats). ``inputs`` are items or L4 records."""
    config = config or L4Settings()
    records = [item_record(x, models or {}) if isinstance(x, Item) else x for x in inputs]
    records.sort(key=_order)
    out: list[Doc] = []
    topics = Counter[str]()
    groups: dict[tuple[str, str], list[int]] = {}
    for i, rec in enumerate(records):
        groups.setdefault((str(rec["domain"]), _l4(rec)["kind"]), []).append(i)
    vectors = embedder.encode([r["text"] for r in records])
    for (domain, _), members in sorted(groups.items()):
        names, label_vecs = topic_labels(embedder, domain)
        terms = [_l4(records[m]).get("subject") or _l4(records[m]).get("term") for m in members]
        for cluster in _clusters(vectors[members], terms, config.merge_threshold):
            group = [records[members[c]] for c in cluster]
            rep = group[0]
            evidence: dict[tuple[str, int, int], dict[str, Any]] = {}
            methods: set[str] = set()
            texts: set[str] = set()
            for rec in group:
                for p in _l4(rec)["evidence"]:
                    evidence.setdefault((str(p["doc_id"]), int(p["start"]), int(p["end"])), p)
                methods.update(_l4(rec).get("methods") or [])
                texts.update([rec["text"], *(_l4(rec).get("variants") or [])])
            sims = label_vecs @ vectors[members[cluster[0]]]
            best = int(np.argmax(sims))
            topic = names[best] if sims[best] >= config.topic_min_similarity else "other"
            topics[topic] += 1
            pointers = list(evidence.values())
            merged = {
                **rep, "parent_ids": sorted({str(p["doc_id"]) for p in pointers}),
                "signals": {STAGE: {
                    **_l4(rep), "evidence": pointers, "support": len({str(p["doc_id"]) for p in pointers}),
                    "members": sum(int(_l4(r).get("members", 1)) for r in group), "methods": sorted(methods),
                    "topic": topic, "topic_score": round(float(sims[best]), 4),
                    "variants": sorted(texts - {rep["text"]})[:10],
                }},
                "models": _with_embedder(rep, embedder),
            }
            out.append(merged)
    out.sort(key=_order)
    supports = Counter(_l4(r)["support"] for r in out)
    stats = {"items_in": len(records), "records_out": len(out), "merged": len(records) - len(out),
             "support": {str(k): v for k, v in sorted(supports.items())}, "topics": dict(topics)}
    return out, stats
