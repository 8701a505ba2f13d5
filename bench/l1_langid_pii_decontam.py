"""L1 language id, PII redaction and decontamination: docs/s per stage and domain, index build cost.

en / zh / math documents are real paragraphs recombined across real documents
(``corpus.build_corpus``); code documents are whole Python standard-library
files. 1% of the en and math documents get a real GSM8K question pasted in, so
the decontaminator's hit path is exercised too. Each stage runs on its own copy
of the corpus.

    python bench/l1_langid_pii_decontam.py [--docs-per-domain 4000] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sysconfig
from pathlib import Path
from typing import Any

import psutil
from _util import peak_rss_mb, save, table, timed
from corpus import build_corpus

from tier_assets.curation.l1.decontam import (
    DEFAULT_BENCHMARKS_DIR,
    BenchmarkIndex,
    Decontaminator,
    read_benchmarks,
)
from tier_assets.curation.l1.langid import LanguageIdentifier, load_identifier
from tier_assets.curation.l1.pii import PIIRedactor
from tier_assets.curation.schema import empty_record, stable_id


def make_docs(per_domain: int, seed: int) -> list[dict[str, Any]]:
    """Records for en / zh / math (recombined real paragraphs) and code (whole stdlib files)."""
    rng = random.Random(seed)
    gsm8k = [json.loads(line)["question"] for line in (DEFAULT_BENCHMARKS_DIR / "gsm8k-test.jsonl").open()]
    docs = []
    for domain in ("en", "zh", "math"):
        for i, src in enumerate(build_corpus(per_domain, seed, domain)):
            text = src["text"]
            if domain != "zh" and i % 100 == 0:
                paragraphs = text.split("\n\n")
                paragraphs.insert(rng.randrange(len(paragraphs) + 1), rng.choice(gsm8k))
                text = "\n\n".join(paragraphs)
            docs.append(empty_record(doc_id=src["id"], domain=domain, tier="L1", batch="bench", text=text))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "test" not in p.parts and p.stat().st_size < 200_000)
    for path in rng.sample(files, min(per_domain, len(files))):
        text = path.read_text(encoding="utf-8", errors="replace")
        docs.append(
            empty_record(
                doc_id=stable_id("code", path.relative_to(stdlib)), domain="code", tier="L1", batch="bench",
                text=text, meta={"language": "python"},
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

    docs = make_docs(args.docs_per_domain, args.seed)
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
