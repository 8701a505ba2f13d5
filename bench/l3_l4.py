"""L3 / L4 benchmark: LLM refinement throughput and pass rates, L4 extraction yield, L4 query latency.

* L3: a small real sample per domain (English and Chinese web, arXiv math, stdlib
  code) refined with the local model: generated tokens/s, verified outputs per
  minute, pass rate and rejection reasons per format.
* L4: extraction from the same sample plus its L3 outputs (rule + LLM), and
  rule-only extraction over every real document available: items per document,
  verification rate.
* Query latency of the L4 index, flat vs IVF, over 10k and 100k items. Item vectors
  are MiniLM embeddings of real sentences from shared/data; 100k is the 10k real
  vectors repeated with small Gaussian noise (re-normalized), as the output says.

    python bench/l3_l4.py [--docs-per-domain 2] [--max-new-tokens 128] [--max-source-chars 600] [--sizes 10000 100000] [--skip-llm]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sysconfig
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from _util import SHARED, peak_rss_mb, save, table

from tier_assets.curation.l3.refine import refine_partition
from tier_assets.curation.l3.settings import L3Settings
from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.extract import sentence_spans
from tier_assets.curation.l4.index import L4Index, ivf_nlist
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.models.embedder import get_embedder
from tier_assets.curation.models.vectors import faiss_device

STDLIB = Path(sysconfig.get_paths()["stdlib"])
CODE_FILES = ("bisect.py", "colorsys.py", "textwrap.py", "heapq.py", "fnmatch.py", "shlex.py", "glob.py",
              "keyword.py", "calendar.py", "statistics.py", "fractions.py", "string.py", "queue.py", "sched.py",
              "graphlib.py", "contextvars.py", "copy.py", "numbers.py", "operator.py", "random.py", "reprlib.py",
              "secrets.py", "stat.py", "struct.py", "timeit.py", "token.py", "tokenize.py", "typing.py",
              "uuid.py", "zipapp.py")


def _jsonl(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def _cjk_share(text: str) -> float:
    return sum("\u4e00" <= ch <= "\u9fff" for ch in text) / max(1, len(text))


def real_documents() -> dict[str, list[tuple[str, str]]]:
    """(id, text) of real documents per domain, in a fixed order."""
    web = SHARED / "web"
    en = [(f"cc23-{i}", t) for i, t in enumerate(_jsonl(web / "redpajama-cc-2023-06-sample.jsonl"))]
    en += [(f"nih-{i}", t) for i, t in enumerate(_jsonl(web / "pile-nih-sample.jsonl"))]
    en += [(f"c4-{i}", t) for i, t in enumerate(_jsonl(web / "redpajama-c4-sample.jsonl"))]
    gold = json.loads((SHARED / "html" / "article-extraction-benchmark" / "ground-truth.json").read_text())
    en += [(f"aeb-{k[:12]}", v["articleBody"]) for k, v in sorted(gold.items())]
    zh_gold = json.loads((SHARED / "html" / "magic-html-zh" / "article" / "base.json").read_text())
    zh = [(f"zh-{k[:12]}", v["content"]) for k, v in sorted(zh_gold.items()) if _cjk_share(v["content"]) > 0.3]
    math = [(f"arxiv-{i}", t) for i, t in enumerate(_jsonl(SHARED / "math" / "arxiv-latex-sample.jsonl"))]
    math += [(f"se-{i}", t) for i, t in enumerate(_jsonl(SHARED / "math" / "stackexchange-sample-a.jsonl"))]
    code = [(f"stdlib-{name}", (STDLIB / name).read_text()) for name in CODE_FILES if (STDLIB / name).exists()]
    return {"en": en, "zh": zh, "math": math, "code": code}


def as_docs(domain: str, rows: list[tuple[str, str]], tier: str = "L2") -> list[dict[str, Any]]:
    meta = {"language": "python"} if domain == "code" else {}
    return [{"doc_id": i, "parent_ids": [], "tier": tier, "domain": domain, "batch": "bench", "text": t,
             "score": 5.0 - k / 100, "signals": {}, "models": {}, "meta": meta} for k, (i, t) in enumerate(rows)]


# ---------------------------------------------------------------------------------------------- L3 + L4 with the LLM

L3_SAMPLE = {"en": ("cc23-8", "cc23-0", "nih-0"), "math": ("arxiv-8", "arxiv-10", "arxiv-7"),
             "code": ("stdlib-bisect.py", "stdlib-colorsys.py", "stdlib-textwrap.py")}


def sample(docs: dict[str, list[tuple[str, str]]], per_domain: int) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for domain, rows in docs.items():
        wanted = L3_SAMPLE.get(domain)
        picked = [r for r in rows if r[0] in wanted] if wanted else rows
        out[domain] = as_docs(domain, picked[:per_domain])
    return out


def bench_llm(docs: dict[str, list[dict[str, Any]]], max_new: int, max_source_chars: int) -> dict[str, Any]:
    from tier_assets.curation.models.llm import load_llm

    start = time.perf_counter()
    llm = load_llm()
    load_s = time.perf_counter() - start
    embedder = get_embedder()
    l3_config = L3Settings(budget_tokens=10**7, max_new_tokens=max_new, min_new_tokens=8,
                         max_source_chars=max_source_chars, batch_size=4)
    per_format: dict[str, Counter[str]] = {}
    gen_tokens = gen_s = judge_s = total_s = 0.0
    kept_total = 0
    l3_by_domain: dict[str, list[dict[str, Any]]] = {}
    spent = 0
    for domain, rows in docs.items():
        kept, _, stats = refine_partition(rows, llm, embedder, l3_config, progress=print)
        l3_by_domain[domain] = kept
        for fmt, counts in stats.per_format.items():
            per_format.setdefault(f"{domain}/{fmt}", Counter()).update(counts)
        gen_tokens += stats.tokens_out
        gen_s += stats.seconds.get("generate", 0.0)
        judge_s += stats.seconds.get("judge", 0.0)
        total_s += stats.seconds["total"]
        kept_total += stats.kept
        spent += stats.spent_tokens
    formats = {k: {"attempted": c["attempted"], "kept": c["kept"],
                   "pass_rate": round(c["kept"] / c["attempted"], 3) if c["attempted"] else None,
                   "reasons": {r: n for r, n in c.items() if r not in ("attempted", "kept")}}
               for k, c in sorted(per_format.items())}
    attempted = sum(c["attempted"] for c in per_format.values())
    l3 = {
        "model": llm.info, "device": getattr(llm, "device", "endpoint"), "model_load_s": round(load_s, 1),
        "docs": sum(len(r) for r in docs.values()), "outputs": attempted, "verified": kept_total,
        "pass_rate": round(kept_total / attempted, 3) if attempted else None,
        "generated_tokens": int(gen_tokens), "generate_s": round(gen_s, 1), "judge_s": round(judge_s, 1),
        "total_s": round(total_s, 1), "generated_tokens_per_s": round(gen_tokens / gen_s, 2) if gen_s else None,
        "verified_outputs_per_min": round(60 * kept_total / total_s, 3) if total_s else None,
        "llm_tokens_spent": spent, "max_new_tokens": max_new, "max_source_chars": max_source_chars,
        "per_format": formats,
    }
    print(table([{"format": k, **{x: v[x] for x in ("attempted", "kept", "pass_rate")},
                  "reasons": json.dumps(v["reasons"])} for k, v in formats.items()]))
    l4_config = L4Settings(budget_tokens=10**7, max_new_tokens=max_new, max_source_chars=max_source_chars)
    l4_rows = []
    for domain, rows in docs.items():
        sources = rows + l3_by_domain[domain]
        kept, rejected, stats = build_l4_partition(sources, llm, embedder, l4_config)
        l4_rows.append({"domain": domain, "docs": len(sources), "llm_calls": stats.llm_calls,
                        "extracted": stats.extracted, "verified": stats.verified,
                        "verified_llm": stats.verified_by_method.get("llm", 0), "kept": stats.kept,
                        "items_per_doc": stats.items_per_doc, "reasons": stats.reasons,
                        "seconds": stats.seconds})
    claims = sum(r["extracted"].get("llm", 0) for r in l4_rows)
    verified = sum(r["verified_llm"] for r in l4_rows)
    l4 = {"per_domain": l4_rows, "llm_outputs": sum(r["llm_calls"] for r in l4_rows),
          "llm_outputs_unparsed": sum(r["extracted"].get("llm_failed_outputs", 0) for r in l4_rows),
          "llm_claims": claims, "llm_claims_verified": verified,
          "llm_verification_rate": round(verified / claims, 3) if claims else None}
    return {"l3": l3, "l4_with_llm": l4}


# ---------------------------------------------------------------------------------------------- L4 rules at scale


def bench_l4_rules(docs: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    embedder = get_embedder()
    config = L4Settings(llm_extraction=False)
    rows = []
    for domain, pairs in docs.items():
        kept, rejected, stats = build_l4_partition(as_docs(domain, pairs), None, embedder, config)
        extracted = stats.extracted.get("rule", 0)
        rows.append({"domain": domain, "docs": stats.docs_in, "extracted": extracted,
                     "verified": stats.verified, "kept": stats.kept,
                     "verification_rate": round(stats.verified / extracted, 3) if extracted else None,
                     "items_per_doc": stats.items_per_doc, "merged": stats.merged,
                     "seconds": stats.seconds})
    print(table(rows))
    return {"per_domain": rows}


# ---------------------------------------------------------------------------------------------- query latency


def real_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct real sentences (40-300 chars) from web, news, math and MMLU texts in shared/data."""
    texts: list[str] = []
    for rows in real_documents().values():
        texts += [t for _, t in rows]
    texts += _jsonl(SHARED / "quality-dev" / "dclm-human-quality-dev.jsonl")
    for path in sorted((SHARED / "benchmarks" / "mmlu" / "test").glob("*.csv")):
        with open(path, encoding="utf-8", newline="") as fh:
            texts += [row[0] for row in csv.reader(fh) if row]  # the question
    found: dict[str, None] = {}
    for text in texts:
        for s, e in sentence_spans(text):
            sentence = " ".join(text[s:e].split())
            if 40 <= len(sentence) <= 300:
                found[sentence] = None
    pool = sorted(found)
    random.Random(seed).shuffle(pool)
    if len(pool) < n:
        raise SystemExit(f"only {len(pool)} distinct real sentences, need {n}")
    return pool[:n]


def _latency(index: L4Index, queries: np.ndarray, k: int) -> dict[str, float]:
    times = []
    for q in queries:
        start = time.perf_counter()
        index.vectors.search(q[None, :], k)
        times.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    index.vectors.search(queries, k)
    batch_s = time.perf_counter() - start
    return {"p50_ms": round(float(np.percentile(times, 50)), 3), "p95_ms": round(float(np.percentile(times, 95)), 3),
            "batch_qps": round(len(queries) / batch_s, 1)}


def bench_queries(sizes: list[int], n_queries: int, k: int = 10) -> dict[str, Any]:
    embedder = get_embedder()
    base_n = min(10_000, max(sizes))
    sentences = real_sentences(base_n + n_queries)
    start = time.perf_counter()
    vectors = embedder.encode(sentences)
    embed_s = time.perf_counter() - start
    base, queries = vectors[:base_n], vectors[base_n:]
    rng = np.random.default_rng(0)
    results = []
    for n in sizes:
        reps = -(-n // base_n)
        data = np.tile(base, (reps, 1))[:n]
        if n > base_n:
            noise = rng.normal(0.0, 0.01, size=(n - base_n, data.shape[1])).astype(np.float32)
            data[base_n:] += noise
            data /= np.linalg.norm(data, axis=1, keepdims=True)
        items = [{"row": i} for i in range(n)]
        exact_ids = None
        for kind in ("flat", "ivf"):
            start = time.perf_counter()
            index = L4Index.from_vectors(data, items, embedder, kind=kind)
            build_s = time.perf_counter() - start
            row = {"items": n, "kind": kind, **{k_: v for k_, v in index.settings.items() if k_ != "kind"},
                   "build_s": round(build_s, 2), **_latency(index, queries, k)}
            _, ids = index.vectors.search(queries, k)
            if kind == "flat":
                exact_ids = ids
            row["recall_at_10"] = round(float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact_ids,
                                                                                            strict=True)])), 4)
            results.append(row)
    print(table(results))
    return {"device": faiss_device(), "embed_real_sentences_s": round(embed_s, 1), "real_sentences": base_n,
            "queries": n_queries, "k": k, "ivf_nlist_rule": f"4*sqrt(n): 10k -> {ivf_nlist(10_000)}, "
                                                            f"100k -> {ivf_nlist(100_000)}",
            "synthesis": (f"{base_n} MiniLM vectors of real sentences from shared/data; larger sizes repeat them "
                          "with Gaussian noise (sigma 0.01 per dimension, re-normalized, cosine to the original "
                          "about 0.98)"),
            "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs-per-domain", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--max-source-chars", type=int, default=600)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-llm", action="store_true")
    args = parser.parse_args()
    docs = real_documents()
    figures: dict[str, Any] = {"docs_available": {d: len(r) for d, r in docs.items()}}
    if not args.skip_llm:
        figures.update(bench_llm(sample(docs, args.docs_per_domain), args.max_new_tokens, args.max_source_chars))
    figures["l4_rules"] = bench_l4_rules(docs)
    figures["query_latency"] = bench_queries(args.sizes, args.queries)
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    save("l3_l4", figures)


if __name__ == "__main__":
    main()
