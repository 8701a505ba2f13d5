"""L1 rule filters against DataTrove 0.10: docs/s, decision agreement, peak RSS; and docs/s per mapper.

The corpus is real paragraphs recombined across real documents (``corpus.build_corpus``): 90% English web,
10% math (Stack Exchange, arXiv LaTeX). DataTrove's GopherQualityFilter, GopherRepetitionFilter,
FineWebQualityFilter and C4QualityFilter run with their defaults, in that order, document by document (as a
DataTrove pipeline streams them; its word-tokenization cache then serves the later filters); ours are the same
four filters with the same thresholds in one FilterGroup. C4 runs last in both because DataTrove's C4 rewrites
the text the filters after it would see. Each engine runs in its own process, so its peak RSS is its own.

DataTrove runs at about 30 docs/s on one core, so past ``--datatrove-max-docs`` it runs on an even sample
(every k-th document) of the same corpus: its docs/s and the agreement are measured on that sample.

Needs the ``bench`` extra (datatrove, whose English tokenizer needs spaCy).

    python bench/l1_filters.py [--sizes 10000 100000] [--seed 0] [--datatrove-max-docs 20000]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _util import OUT, peak_rss_mb, save, table, timed
from corpus import build_corpus

from tier_assets.curation.l1.filters.base import FilterGroup
from tier_assets.curation.l1.filters.c4 import C4QualityFilter
from tier_assets.curation.l1.filters.fineweb import FineWebQualityFilter
from tier_assets.curation.l1.filters.gopher_quality import GopherQualityFilter
from tier_assets.curation.l1.filters.gopher_repetition import GopherRepetitionFilter
from tier_assets.curation.l1.mappers import default_mappers

MATH_FRACTION = 0.1
ORDER = ("gopher_quality", "gopher_repetition", "fineweb_quality", "c4_quality")


def write_corpus(n: int, seed: int) -> Path:
    """``n`` recombined documents (English web and math) as JSONL.gz under bench/out."""
    path = OUT / f"l1_filters-corpus-{n}-{seed}.jsonl.gz"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    n_math = int(n * MATH_FRACTION)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for domain, count in (("en", n - n_math), ("math", n_math)):
            for doc in build_corpus(count, seed, domain):
                fh.write(json.dumps({"id": doc["id"], "text": doc["text"]}, ensure_ascii=False) + "\n")
    return path


def read_corpus(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def datatrove_filters() -> list[Any]:
    """DataTrove's four filters, with spaCy's tokenizer already loaded (so that load is not timed)."""
    from datatrove.data import Document
    from datatrove.pipeline import filters as dt

    filters = [dt.GopherQualityFilter(), dt.GopherRepetitionFilter(), dt.FineWebQualityFilter(), dt.C4QualityFilter()]
    filters[0].filter(Document(text="Load the tokenizer before timing.", id="warmup"))
    return filters


def run_datatrove(filters: list[Any], docs: list[dict[str, Any]]) -> list[int]:
    """Index in ORDER of the filter that rejected each document (-1: kept)."""
    from datatrove.data import Document

    decisions = []
    for doc in (Document(text=d["text"], id=d["id"]) for d in docs):
        for i, f in enumerate(filters):
            if f.filter(doc) is not True:
                decisions.append(i)
                break
        else:
            decisions.append(-1)
    return decisions


def run_ours(docs: list[dict[str, Any]]) -> list[int]:
    group = FilterGroup(
        "en_rules", [GopherQualityFilter(), GopherRepetitionFilter(), FineWebQualityFilter(), C4QualityFilter()]
    )
    records = [{"text": d["text"]} for d in docs]
    group.process(records)
    return [ORDER.index(r["stage"]) if "stage" in r else -1 for r in records]


def engine_main(engine: str, corpus: Path, result: Path, stride: int) -> None:
    """Child process: run one engine on every ``stride``-th document of the corpus; write figures and decisions."""
    docs = read_corpus(corpus)[::stride]
    if engine == "datatrove":
        filters = datatrove_filters()
        decisions, seconds = timed(lambda: run_datatrove(filters, docs))
    else:
        decisions, seconds = timed(lambda: run_ours(docs))
    result.write_text(json.dumps({
        "docs": len(docs), "seconds": seconds, "docs_per_s": len(docs) / seconds,
        "peak_rss_MB": peak_rss_mb(), "decisions": decisions,
    }))


def run_engine(engine: str, corpus: Path, stride: int = 1) -> dict[str, Any]:
    result = corpus.with_name(f"{corpus.name}.{engine}.json")
    subprocess.run(
        [sys.executable, __file__, "--engine", engine, "--corpus", str(corpus), "--result", str(result),
         "--stride", str(stride)],
        check=True,
    )
    figures = json.loads(result.read_text())
    result.unlink()
    return figures


def mapper_rates(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """docs/s of each default English mapper on its own copy of the documents."""
    rows = []
    for mapper in default_mappers("en"):
        batch = copy.deepcopy(docs)
        _, seconds = timed(lambda mapper=mapper, batch=batch: mapper.process(batch))
        changed = sum(mapper.name in d.get("signals", {}).get("mappers", []) for d in batch)
        rows.append({"mapper": mapper.name, "docs": len(batch), "seconds": round(seconds, 2),
                     "docs_per_s": len(batch) / seconds, "changed": changed})
    return rows


def compare(size: int, seed: int, datatrove_max_docs: int) -> dict[str, Any]:
    corpus, build_s = timed(lambda: write_corpus(size, seed))
    docs = read_corpus(corpus)
    print(f"\n== {size} documents ({sum(len(d['text']) for d in docs) / size:,.0f} chars on average; "
          f"corpus ready in {build_s:.1f} s)", flush=True)
    ours = run_engine("ours", corpus)
    print(f"ours: {ours['docs_per_s']:,.0f} docs/s", flush=True)
    stride = -(-size // datatrove_max_docs)
    started = time.perf_counter()
    datatrove = run_engine("datatrove", corpus, stride)
    print(f"datatrove: {datatrove['docs_per_s']:,.0f} docs/s on {datatrove['docs']} docs "
          f"({time.perf_counter() - started:,.0f} s)", flush=True)
    a, b = datatrove.pop("decisions"), ours.pop("decisions")[::stride]
    same_keep = sum((x == -1) == (y == -1) for x, y in zip(a, b, strict=True))
    same_filter = sum(x == y for x, y in zip(a, b, strict=True))
    mappers = mapper_rates(docs)
    print(table(mappers))
    return {
        "docs": size,
        "mean_chars": round(sum(len(d["text"]) for d in docs) / size),
        "datatrove": {k: round(v, 2) for k, v in datatrove.items()},
        "ours": {k: round(v, 2) for k, v in ours.items()},
        "speedup": round(ours["docs_per_s"] / datatrove["docs_per_s"], 2),
        "compared_docs": len(a),
        "agreement_keep_drop": round(same_keep / len(a), 5),
        "agreement_rejecting_filter": round(same_filter / len(a), 5),
        "kept": {"datatrove": a.count(-1), "ours": b.count(-1)},
        "rejected_by": {name: {"datatrove": a.count(i), "ours": b.count(i)} for i, name in enumerate(ORDER)},
        "mappers": [{k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()} for row in mappers],
        "mappers_peak_rss_MB": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datatrove-max-docs", type=int, default=20_000)
    parser.add_argument("--stride", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=("datatrove", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        engine_main(args.engine, args.corpus, args.result, args.stride)
        return
    runs = []
    for size in args.sizes:  # figures are saved after each size, so a long 100k run keeps the 10k one
        runs.append(compare(size, args.seed, args.datatrove_max_docs))
        print(table([
            {"docs": r["docs"], "datatrove_docs": r["datatrove"]["docs"], "datatrove_docs_per_s": r["datatrove"]["docs_per_s"],
             "ours_docs_per_s": r["ours"]["docs_per_s"], "speedup": r["speedup"],
             "agreement": r["agreement_keep_drop"], "datatrove_peak_MB": r["datatrove"]["peak_rss_MB"],
             "ours_peak_MB": r["ours"]["peak_rss_MB"]}
            for r in runs
        ]))
        save("l1_filters", {"seed": args.seed, "math_fraction": MATH_FRACTION, "filter_order": ORDER,
                            "datatrove_max_docs": args.datatrove_max_docs, "runs": runs})

if __name__ == "__main__":
    main()
