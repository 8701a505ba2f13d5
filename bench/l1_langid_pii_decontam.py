"""L1 language id, PII redaction and decontamination: docs/s per stage and domain, index build cost.

Documents are real paragraphs recombined across real documents of each domain
(en: Common Crawl / C4 / the Pile; zh: Chinese news and forum pages; math: arXiv
LaTeX and Stack Exchange; code: Python standard-library files, whole), so no two
are copies. 1% of the en and math documents get a real GSM8K question pasted in,
so the decontaminator's hit path is exercised too. Each stage runs on its own
copy of the corpus.

    python bench/l1_langid_pii_decontam.py [--docs-per-domain 4000] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import random
import re
import sysconfig
from pathlib import Path
from typing import Any

import psutil
from _util import SHARED, peak_rss_mb, save, table, timed

from tier_assets.curation.l1.decontam import (
    DEFAULT_BENCHMARKS_DIR,
    BenchmarkIndex,
    Decontaminator,
    read_benchmarks,
)
from tier_assets.curation.l1.langid import LanguageIdentifier, load_identifier
from tier_assets.curation.l1.pii import PIIRedactor
from tier_assets.curation.schema import empty_record, stable_id

_SOURCES = {
    "en": [
        "web/cc-main-2019-30-dolma.jsonl.gz",
        "web/ccnet-en-head-0091.jsonl.gz",
        "web/ccnet-en-head-0174.jsonl.gz",
        "web/redpajama-c4-sample.jsonl",
        "web/redpajama-cc-2023-06-sample.jsonl",
        "web/pile-nih-sample.jsonl",
        "web/pile-uspto-sample.jsonl",
    ],
    "math": [
        "math/arxiv-latex-sample.jsonl",
        "math/stackexchange-sample-a.jsonl",
        "math/stackexchange-sample-b.jsonl",
    ],
}


def _jsonl_texts(rel: str) -> list[str]:
    path = SHARED / rel
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def _paragraphs(texts: list[str]) -> list[str]:
    return [p for t in texts for p in re.split(r"\n\s*\n", t) if len(p.strip()) >= 40]


def _pools() -> dict[str, list[str]]:
    pools = {domain: _paragraphs([t for rel in rels for t in _jsonl_texts(rel)]) for domain, rels in _SOURCES.items()}
    zh_texts = []
    for kind in ("article", "forum"):
        folder = SHARED / "html/magic-html-zh" / kind
        base = json.loads((folder / "base.json").read_text(encoding="utf-8"))
        # base.json also lists English pages whose HTML is not shipped: keep the Chinese ones.
        zh_texts += [v["content"] for k, v in base.items() if (folder / "htmls" / f"{k}.html").exists()]
    pools["zh"] = _paragraphs(zh_texts) + [line for t in zh_texts for line in t.splitlines() if len(line) >= 40]
    return pools


def build_corpus(per_domain: int, seed: int) -> list[dict[str, Any]]:
    """Recombined real paragraphs (3..12 per document) for en/zh/math; whole stdlib files for code."""
    rng = random.Random(seed)
    pools = _pools()
    gsm8k = [json.loads(line)["question"] for line in (DEFAULT_BENCHMARKS_DIR / "gsm8k-test.jsonl").open()]
    docs = []
    for domain in ("en", "zh", "math"):
        for i in range(per_domain):
            parts = rng.sample(pools[domain], rng.randint(3, 12))
            if domain in ("en", "math") and i % 100 == 0:
                parts.insert(rng.randrange(len(parts) + 1), rng.choice(gsm8k))
            text = "\n\n".join(parts)
            docs.append(empty_record(doc_id=stable_id(domain, i), domain=domain, tier="L1", batch="bench", text=text))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "test" not in p.parts and p.stat().st_size < 200_000)
    for i, path in enumerate(rng.sample(files, min(per_domain, len(files)))):
        text = path.read_text(encoding="utf-8", errors="replace")
        docs.append(
            empty_record(
                doc_id=stable_id("code", i), domain="code", tier="L1", batch="bench", text=text,
                meta={"language": "python"},
            )
        )
    return docs


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs-per-domain", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # Index build first, in a clean process, so the RSS delta is the index's own.
    rss0, peak0 = _rss_mb(), peak_rss_mb()
    index, build_s = timed(lambda: BenchmarkIndex(read_benchmarks(DEFAULT_BENCHMARKS_DIR)))
    index_figures = {
        "items": len(index.items), "per_benchmark": index.benchmarks, "ngrams": len(index),
        "build_s": round(build_s, 2), "arrays_MB": round(index.nbytes / 1e6, 1),
        "rss_delta_MB": round(_rss_mb() - rss0, 1), "peak_rss_delta_MB": round(peak_rss_mb() - peak0, 1),
        "version": index.version,
    }
    _, model_load_s = timed(load_identifier)

    docs = build_corpus(args.docs_per_domain, args.seed)
    stages = {"langid": LanguageIdentifier(), "pii": PIIRedactor(), "decontam": Decontaminator(index=index)}
    rows = []
    for name, step in stages.items():
        for domain in ("en", "zh", "math", "code", "all"):
            batch = copy.deepcopy([d for d in docs if domain in ("all", d["domain"])])
            mb = sum(len(d["text"].encode("utf-8")) for d in batch) / 1e6
            result, seconds = timed(lambda step=step, batch=batch: step.process(batch))
            rows.append({
                "stage": name, "domain": domain, "docs": len(batch), "MB": round(mb, 1),
                "seconds": round(seconds, 2), "docs_per_s": len(batch) / seconds, "MB_per_s": mb / seconds,
                "rejected": len(result.rejected),
            })
    print(table(rows))
    print(json.dumps(index_figures, indent=2))
    save("l1_langid_pii_decontam", {
        "docs_per_domain": args.docs_per_domain, "seed": args.seed, "index": index_figures,
        "langid_model_load_s": round(model_load_s, 2), "stages": rows, "peak_rss_MB": round(peak_rss_mb(), 1),
    })


if __name__ == "__main__":
    main()
