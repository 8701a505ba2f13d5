"""L1 dedup benchmark: MinHash throughput, LSH scaling, near-duplicate precision/recall, semantic speed, memory.

Single-threaded on purpose and timed in CPU seconds, so figures are per core and
hold on a machine shared with other work. Writes bench/out/l1_dedup.json.

    .venv/bin/python bench/l1_dedup.py [--docs 100000] [--semantic-docs 300] [--no-sweep]

Near-duplicate quality is measured on real documents (the English pool of
bench/corpus.py) with realistic edits: boilerplate lines added, a paragraph moved,
typos in about 1% of words, truncation keeping 80-95% of the text; one to three
edits per copy, two copies per original. The negatives are the other originals
plus hard distractors built from a disjoint pool of real documents: documents
quoting 25-65% of an original's text (syndicated or quoted text), pairs of
documents sharing only header/footer lines, and partial overlaps: an original's
opening (about 300 tokens) with a different real body ("lede"), and a real Stack
Exchange question with the replies of another thread ("thread"; the original thread
and an edited copy of it are cases too). Originals are in batch ``a``; copies and
distractors in batch ``b``, so the cross-batch path is what is measured.

The cases are split in two disjoint parts by original: ``tune`` (every sweep and
threshold choice looks only at it) and ``report`` (the figures to quote, never used
to choose anything).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from corpus import build_corpus, load_sources  # noqa: E402

from tier_assets.curation.l1 import dedup as dd  # noqa: E402
from tier_assets.curation.models import vectors  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "l1_dedup.json"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PARTS = ("tune", "report")
EDITS = ("boilerplate", "reorder", "typos", "truncate")


# ---------------------------------------------------------------- edits


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 2:
        return word + word
    i = rng.randrange(len(word) - 1)
    op = rng.choice(("swap", "drop", "double", "replace"))
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "drop":
        return word[:i] + word[i + 1:]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("etaoinshrdlu") + word[i + 1:]


def near_duplicate(rng: random.Random, text: str, boilerplate: list[str]) -> tuple[str, list[str]]:
    """A realistic edited copy of ``text`` (1-3 edits) and the names of the edits applied."""
    kinds = sorted(rng.sample(EDITS, rng.choice((1, 1, 2, 2, 3))), key=EDITS.index)
    paragraphs = text.split("\n")
    if "truncate" in kinds:
        keep = int(len(text) * rng.uniform(0.80, 0.95))
        cut = text.find(" ", keep)
        paragraphs = (text if cut < 0 else text[:cut]).split("\n")
    if "reorder" in kinds and len(paragraphs) >= 3:
        moved = paragraphs.pop(rng.randrange(len(paragraphs)))
        paragraphs.insert(rng.randrange(len(paragraphs) + 1), moved)
    if "typos" in kinds:
        out = []
        for para in paragraphs:
            words = para.split(" ")
            out.append(" ".join(_typo(rng, w) if w and rng.random() < 0.01 else w for w in words))
        paragraphs = out
    if "boilerplate" in kinds:
        budget = 0.15 * len(text)
        head, tail = [], []
        for line in rng.sample(boilerplate, 6):
            if budget < len(line):
                break
            budget -= len(line)
            (head if rng.random() < 0.5 else tail).append(line)
        paragraphs = head + paragraphs + tail
    return "\n".join(paragraphs), kinds


def partial_overlap(rng: random.Random, base: str, filler: list[list[str]]) -> str:
    """A different document that quotes 25-65% of ``base``'s text (cut at spaces) amid other text."""
    size = int(len(base) * rng.uniform(0.25, 0.65))
    start = base.find(" ", rng.randrange(max(1, len(base) - size))) + 1
    shared = base[start:start + size]
    rest: list[str] = []
    while sum(map(len, rest)) < len(base) - size:
        paras = rng.choice(filler)
        k = rng.randrange(len(paras))
        rest.extend(paras[k:k + 3])
    return "\n".join([shared, *rest] if rng.random() < 0.5 else [*rest, shared])


def shared_lede(rng: random.Random, base: str, filler: list[list[str]]) -> str:
    """``base``'s opening (about 300 tokens, at most 60% of it, cut at a space) then a different real body."""
    size = min(int(rng.uniform(1200, 1600)), int(len(base) * 0.6))
    lede = base[:max(1, base.find(" ", size))]
    body: list[str] = []
    while sum(map(len, body)) < max(len(base) - len(lede), 800):
        paras = rng.choice(filler)
        k = rng.randrange(len(paras))
        body.extend(paras[k:k + 3])
    return "\n".join([lede, *body])


def stack_exchange_threads() -> list[tuple[str, str]]:
    """(question, replies) of the real Stack Exchange threads in shared/data that have replies."""
    threads = []
    for name in ("stackexchange-sample-a.jsonl", "stackexchange-sample-b.jsonl"):
        with open(DATA / "math" / name, encoding="utf-8") as fh:
            for line in fh:
                text = json.loads(line)["text"]
                cut = text.find("\nA:")
                if cut > 0:
                    threads.append((text[:cut], text[cut:]))
    return list(dict.fromkeys(threads))  # the two samples share a thread


def shingle_set(text: str, ngram: int = 5) -> set[tuple[bytes, ...]]:
    words = dd._words(text)
    if len(words) < ngram:
        return {tuple(words)}
    return set(zip(*(words[i:] for i in range(ngram)), strict=False))


def jaccard(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


# ---------------------------------------------------------------- evaluation set


@functools.cache
def real_documents() -> tuple[list[list[str]], list[set]]:
    """Paragraphs and shingle sets of the real English documents of >= 80 words, no two near-duplicates."""
    docs: list[list[str]] = []
    sets: list[set] = []
    for s in load_sources("en"):
        sh = shingle_set("\n".join(s.paragraphs))
        if sum(len(p.split()) for p in s.paragraphs) >= 80 and all(jaccard(sh, o) < 0.5 for o in sets):
            docs.append(list(s.paragraphs))
            sets.append(sh)
    return docs, sets


def eval_set(seed: int = 0, part: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Originals (batch a); two edited copies of each, quotes, ledes, threads and template pages (batch b).

    Real documents are split into originals and a disjoint filler pool, so that
    distractors share with an original only what they are meant to share. ``part``
    keeps the even (``tune``) or odd (``report``) originals and threads; ``limit``
    the first that many originals of it.
    """
    rng = random.Random(seed)
    docs, sets = real_documents()
    bases, base_sets = docs[0::2], sets[0::2]
    chosen = [i for i in range(len(bases)) if part is None or i % 2 == PARTS.index(part)][:limit]
    quote_filler, template_pool = docs[1::4] + docs[3::4][: len(docs) // 8], docs[3::4][len(docs) // 8:]
    boilerplate = sorted({p for d in docs for p in d if 3 <= len(p) <= 60})
    a_docs = [{"doc_id": f"base{i}", "batch": "a", "text": "\n".join(p)} for i, p in enumerate(bases)]
    b_docs, truth, kinds, true_j = [], {}, {}, {}
    for i, paras in enumerate(bases):
        base = "\n".join(paras)
        if i not in chosen:
            continue
        for copy in range(2):
            text, applied = near_duplicate(rng, base, boilerplate)
            doc_id = f"dup{i}.{copy}"
            b_docs.append({"doc_id": doc_id, "batch": "b", "text": text})
            truth[doc_id], kinds[doc_id] = f"base{i}", applied
            true_j[doc_id] = jaccard(base_sets[i], shingle_set(text))
        text = partial_overlap(rng, base, quote_filler)
        b_docs.append({"doc_id": f"quote{i}", "batch": "b", "text": text})
        true_j[f"quote{i}"] = jaccard(base_sets[i], shingle_set(text))
        b_docs.append({"doc_id": f"lede{i}", "batch": "b", "text": shared_lede(rng, base, quote_filler)})
    threads = stack_exchange_threads()
    for t, (question, replies) in enumerate(threads):
        if (part is not None and t % 2 != PARTS.index(part)) or (limit is not None and t // 2 >= limit // 2):
            continue
        other = threads[t + 1 if t + 1 < len(threads) else t - 1][1]  # a thread of the other part
        if len(question) > 0.6 * min(len(question + replies), len(question + other)):
            continue  # the question is most of the thread: a near-duplicate by any measure, not a partial overlap
        original = question + replies
        a_docs.append({"doc_id": f"thread{t}", "batch": "a", "text": original})
        text, applied = near_duplicate(rng, original, boilerplate)
        b_docs.append({"doc_id": f"dupthread{t}", "batch": "b", "text": text})
        truth[f"dupthread{t}"], kinds[f"dupthread{t}"] = f"thread{t}", applied
        b_docs.append({"doc_id": f"replies{t}", "batch": "b", "text": question + other})
    for j in range(0 if part != "report" else 2, len(template_pool) - 1, 4 if part else 2):
        # same site: shared header/footer, different content
        lines = rng.sample(boilerplate, 6)
        for k in (j, j + 1):
            text = "\n".join(lines[:3] + template_pool[k] + lines[3:])
            b_docs.append({"doc_id": f"template{k}", "batch": "b", "text": text})
    rng.shuffle(b_docs)
    return {"a": a_docs, "b": b_docs, "truth": truth, "kinds": kinds, "true_jaccard": true_j}


def score(ev: dict[str, Any], cfg: dd.DedupConfig, sigs_a: pa.Table, sigs_b: pa.Table) -> dict[str, Any]:
    """Precision / recall of ``dedup`` on the evaluation set.

    A rejection is right when the twin belongs to the document's true cluster (its
    original or the other copy of it), or when the two texts happen to be near
    duplicates anyway (exact shingle Jaccard >= 0.8: distractors built from the same
    real paragraphs); anything else rejected is a false positive.
    """
    res_a = dd.dedup([dict(d) for d in ev["a"]], sigs_a, [], cfg)
    res_b = dd.dedup([dict(d) for d in ev["b"]], sigs_b, [sigs_a], cfg)
    truth = ev["truth"]
    rejected = res_a.rejected + res_b.rejected

    def cluster(doc_id: str) -> str:
        return truth.get(doc_id, doc_id)

    found = {d["doc_id"] for d in rejected
             if d["doc_id"] in truth and cluster(d["signals"]["dedup"]["dup_twin"]) == truth[d["doc_id"]]}
    texts = {d["doc_id"]: d["text"] for d in ev["a"] + ev["b"]}
    incidental = {d["doc_id"] for d in rejected if d["doc_id"] not in found and jaccard(
        shingle_set(d["text"]), shingle_set(texts[d["signals"]["dedup"]["dup_twin"]])) >= 0.8}
    wrong = sorted(f'{d["doc_id"]}->{d["signals"]["dedup"]["dup_twin"]}' for d in rejected
                   if d["doc_id"] not in found | incidental)
    by_kind: dict[str, list[bool]] = {}
    for doc_id, kinds in ev["kinds"].items():
        for kind in kinds:
            by_kind.setdefault(kind, []).append(doc_id in found)
    return {
        "precision": round((len(found) + len(incidental)) / max(1, len(rejected)), 4),
        "recall": round(len(found) / max(1, len(truth)), 4),
        "rejected": len(rejected), "true_positives": len(found), "positives": len(truth),
        "incidental_duplicates": len(incidental),
        "recall_by_edit": {k: round(float(np.mean(v)), 4) for k, v in sorted(by_kind.items())},
        "false_positives": wrong[:10],
    }


def minhash_quality(ev: dict[str, Any], cfg: dd.DedupConfig, sweep: bool) -> dict[str, Any]:
    mh = replace(cfg, semantic=False)
    sigs_a = dd.compute_signatures(ev["a"], mh)
    sigs_b = dd.compute_signatures(ev["b"], mh)
    out: dict[str, Any] = {"defaults": score(ev, mh, sigs_a, sigs_b)}
    # estimator check: estimated vs exact Jaccard of every (base, copy / quote) pair
    sig_a = {r: s for r, s in zip(sigs_a["doc_id"].to_pylist(), sigs_a["minhash"].to_pylist(), strict=True)}
    sig_b = {r: s for r, s in zip(sigs_b["doc_id"].to_pylist(), sigs_b["minhash"].to_pylist(), strict=True)}
    errors = []
    for doc_id, tj in ev["true_jaccard"].items():
        base = ev["truth"].get(doc_id) or "base" + doc_id.removeprefix("quote")
        est = float(np.mean(np.array(sig_a[base]) == np.array(sig_b[doc_id])))
        errors.append(abs(est - tj))
    out["jaccard_estimate_abs_error"] = {"mean": round(float(np.mean(errors)), 4),
                                         "p95": round(float(np.percentile(errors, 95)), 4)}
    if sweep:
        rows = []
        for bands, r in ((9, 13), (14, 8), (16, 8), (20, 5), (25, 4), (20, 10)):
            for threshold in (0.6, 0.65, 0.7, 0.75, 0.8):
                c = replace(mh, bands=bands, rows=r, jaccard_threshold=threshold)
                if threshold == 0.6:
                    sa, sb = dd.compute_signatures(ev["a"], c), dd.compute_signatures(ev["b"], c)
                s = score(ev, c, sa, sb)
                rows.append({"bands": bands, "rows": r, "threshold": threshold,
                             "precision": s["precision"], "recall": s["recall"]})
        out["sweep"] = rows
    return out


def dedup_quality(cfg: dd.DedupConfig, n: int, embedder: Any) -> dict[str, Any]:
    """Each method alone and combined (exact + MinHash + semantic, as L1 runs it) on both parts.

    The cosine sweep runs on the ``tune`` part only; ``report`` is scored at the
    configured thresholds. Signature docs/s includes the embedding of every window.
    """
    methods = {"exact": replace(cfg, minhash=False, semantic=False),
               "minhash": replace(cfg, exact=False, semantic=False),
               "semantic": replace(cfg, exact=False, minhash=False), "combined": cfg}
    out: dict[str, Any] = {}
    for part in PARTS:
        ev = eval_set(part=part, limit=n)
        (sigs_a, sigs_b), dt = timed(lambda ev=ev: (dd.compute_signatures(ev["a"], cfg, embedder),
                                                    dd.compute_signatures(ev["b"], cfg, embedder)))
        docs = len(ev["a"]) + len(ev["b"])
        result: dict[str, Any] = {"docs": docs, "positives": len(ev["truth"]),
                                  "signature_docs_per_s_per_core": round(docs / dt, 1)}
        result.update({name: score(ev, c, sigs_a, sigs_b) for name, c in methods.items()})
        if part == "tune":
            result["cosine_sweep"] = [
                {"cosine": c, **{name: {k: v for k, v in score(ev, replace(methods[name], cosine_threshold=c), sigs_a,
                                                                sigs_b).items() if k in ("precision", "recall")}
                                 for name in ("semantic", "combined")}}
                for c in (0.85, 0.9, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97)]
        out[part] = result
    return out


# ---------------------------------------------------------------- throughput and scaling


def scale_corpus(n: int, seed: int = 0, dup_rate: float = 0.1) -> list[dict[str, Any]]:
    """``n`` corpus documents of which about ``dup_rate`` are edited copies of earlier ones."""
    rng = random.Random(seed)
    boilerplate = sorted({p for s in load_sources("en") for p in s.paragraphs if 3 <= len(p) <= 60})
    docs: list[dict[str, Any]] = []
    fresh = build_corpus(n, seed)
    while len(docs) < n:
        if docs and rng.random() < dup_rate:
            text, _ = near_duplicate(rng, rng.choice(docs)["text"], boilerplate)
        else:
            text = next(fresh)["text"]
        docs.append({"doc_id": f"c{len(docs):07d}", "batch": "", "text": text})
    return docs


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``fn``'s result and its CPU seconds: single-threaded, that is time on one core, whatever else
    the shared machine runs (wall time would count other people's processes)."""
    t0 = time.process_time()
    result = fn(*args, **kwargs)
    return result, time.process_time() - t0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scaling(n_docs: int, cfg: dd.DedupConfig) -> dict[str, Any]:
    mh = replace(cfg, semantic=False)
    docs = scale_corpus(n_docs)
    chars = sum(len(d["text"]) for d in docs)
    n_batches = 10
    per = n_docs // n_batches
    for i, d in enumerate(docs):
        d["batch"] = f"{min(i // per, n_batches - 1):02d}"
    batches = [[d for d in docs if d["batch"] == f"{b:02d}"] for b in range(n_batches)]
    sigs = []
    t_sig = 0.0
    for batch in batches:
        s, dt = timed(dd.compute_signatures, batch, mh)
        sigs.append(s)
        t_sig += dt
    out: dict[str, Any] = {
        "docs": n_docs, "avg_chars": round(chars / n_docs),
        "signature_docs_per_s_per_core": round(n_docs / t_sig),
        "signature_mb_per_s_per_core": round(chars / t_sig / 1e6, 2),
    }
    # one batch holding everything, at 10% and 100% of the corpus: cost per document should stay flat
    for label, k in (("10pct", n_batches // 10 or 1), ("100pct", n_batches)):
        subset = [dict(d, batch="all") for b in batches[:k] for d in b]
        table = pa.concat_tables(sigs[:k])
        table = table.set_column(table.schema.get_field_index("batch"), "batch",
                                 pa.array(["all"] * table.num_rows)).set_column(
            table.schema.get_field_index("order"), "order", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        table = table.replace_schema_metadata(sigs[0].schema.metadata)
        res, dt = timed(dd.dedup, subset, table, [], mh)
        out[f"dedup_one_batch_{label}"] = {"docs": len(subset), "cpu_seconds": round(dt, 3),
                                           "us_per_doc": round(dt / len(subset) * 1e6, 1),
                                           "rejected": len(res.rejected),
                                           "lsh_candidate_pairs": _candidate_count(table, mh)}
    # the last batch against nine earlier ones (what a materialization does)
    res, dt = timed(dd.dedup, [dict(d) for d in batches[-1]], sigs[-1], sigs[:-1], mh)
    out["dedup_last_batch_vs_earlier"] = {"current": len(batches[-1]), "prefix": n_docs,
                                          "cpu_seconds": round(dt, 3), "rejected": len(res.rejected)}
    out["peak_rss_mb"] = round(peak_rss_mb())
    return out


def _candidate_count(table: pa.Table, cfg: dd.DedupConfig) -> int:
    sig = dd._matrix(table["minhash"], cfg.num_perm, np.uint32, "minhash")
    lo, _ = dd._lsh_candidates(sig, cfg.bands, cfg.rows, cfg.seed)
    return len(lo)


def semantic_speed(n: int, cfg: dd.DedupConfig) -> dict[str, Any]:
    """Semantic signatures/s on one core: default (MiniLM, 256-token windows) and the faster path (an
    ``Embedder`` with 128-token windows passed to ``compute_signatures``)."""
    import torch

    from tier_assets.curation.models.embedder import Embedder, get_embedder

    torch.set_num_threads(1)
    docs = [{"doc_id": f"s{i}", "batch": "s", "text": d["text"]} for i, d in enumerate(build_corpus(n, seed=7))]
    sem = replace(cfg, exact=False, minhash=False)
    default = get_embedder(cfg.embedder_model)
    out: dict[str, Any] = {"docs": n, "torch_threads": 1}
    dd.compute_signatures(docs[:16], sem, default)  # warm-up
    _, dt = timed(dd.compute_signatures, docs, sem, default)
    out["default_docs_per_s"] = round(n / dt, 1)
    fast = Embedder(cfg.embedder_model, max_seq_length=128)
    _, dt = timed(dd.compute_signatures, docs, sem, fast)
    out["seq128_docs_per_s"] = round(n / dt, 1)
    # FAISS cost of the semantic stage at scale: 100k unit vectors, 10k queries (synthetic vectors, timing only)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((100_000, default.dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index = vectors.make_index(default.dim)
    index.add(base)
    _, dt = timed(vectors.range_neighbors, index, base[-10_000:], cfg.cosine_threshold)
    out["faiss_device"] = index.device
    out["faiss_flat_range_100k_x_10k_cpu_s"] = round(dt, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000, help="corpus size for scaling / memory (0: skip)")
    parser.add_argument("--semantic-docs", type=int, default=300, help="documents for embedding speed")
    parser.add_argument("--semantic-eval", type=int, default=80, help="originals per part in the P/R sets")
    parser.add_argument("--config", default="{}", help="DedupConfig settings as JSON, e.g. '{\"embed_windows\": 1}'")
    parser.add_argument("--no-sweep", action="store_true", help="skip the MinHash parameter sweep")
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(1)
    cfg = dd.DedupConfig(**json.loads(args.config))
    report: dict[str, Any] = {"config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
                              "num_perm": cfg.num_perm, "cpu_count": os.cpu_count(),
                              "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}

    ev = eval_set(part="tune")
    tj = [v for k, v in ev["true_jaccard"].items() if k in ev["truth"]]
    qj = [v for k, v in ev["true_jaccard"].items() if k not in ev["truth"]]
    report["eval_set_tune"] = {"originals": len(ev["a"]), "batch_b_docs": len(ev["b"]), "near_duplicates": len(tj),
                               "near_dup_true_jaccard": {"min": round(min(tj), 3),
                                                         "p10": round(float(np.percentile(tj, 10)), 3),
                                                         "median": round(float(np.median(tj)), 3)},
                               "quote_distractor_true_jaccard_max": round(max(qj), 3)}
    report["minhash_quality_tune"] = minhash_quality(ev, cfg, sweep=not args.no_sweep)
    print(json.dumps(report["eval_set_tune"], indent=1))
    print(json.dumps(report["minhash_quality_tune"]["defaults"], indent=1))

    if args.docs:
        report["scaling"] = scaling(args.docs, cfg)
        print(json.dumps(report["scaling"], indent=1))

    if cfg.semantic:
        from tier_assets.curation.models.embedder import get_embedder

        report["dedup_quality"] = dedup_quality(cfg, args.semantic_eval, get_embedder(cfg.embedder_model))
        print(json.dumps(report["dedup_quality"], indent=1))
        report["semantic_speed"] = semantic_speed(args.semantic_docs, cfg)
        print(json.dumps(report["semantic_speed"], indent=1))
    report["peak_rss_mb"] = round(peak_rss_mb())
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
