"""All of L1 end to end on real-paragraph corpora: docs/s per stage and overall, peak RSS.

Each run ingests the corpus into L0 and runs ``run_l1_partition`` (mappers, language id,
rule filters, decontamination, PII, dedup) on a temporary data root, in its own process so
its peak RSS is its own. Semantic dedup embeds every candidate with MiniLM on the CPU
(about 20-40 docs/s on 2 cores), so the 100k run is made with semantic dedup off unless
``--semantic-100k`` is given; the 10k run is made both ways.

    python bench/l1_pipeline.py [--sizes 10000 100000] [--semantic-100k]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _util import peak_rss_mb, save, table
from l0_ingest import make_corpus


def run_one(path: Path, semantic: bool) -> dict:
    from tier_assets.curation.l0 import ingest_partition
    from tier_assets.curation.l1.settings import load_l1_settings
    from tier_assets.curation.l1.tier import run_l1_partition
    from tier_assets.curation.models.embedder import get_embedder
    from tier_assets.curation.pipeline import Models
    from tier_assets.curation.sources import SourceEntry
    from tier_assets.curation.storage import PartitionRef, TierStore

    lines: list[str] = []
    with tempfile.TemporaryDirectory() as root:
        store = TierStore(root)
        ingest_partition(store, PartitionRef("L0", "en", "b"), [SourceEntry("bench", "en", "jsonl", str(path), (), "c")])
        recipe = load_l1_settings("en", {"dedup": {"semantic": semantic}})
        start = time.perf_counter()
        models = Models(embedder=get_embedder() if semantic else None)
        _, stats = run_l1_partition(store, recipe, "b", models, progress=lines.append)
        seconds = time.perf_counter() - start
    steps = {name: round(stage.docs_per_second, 1) for name, stage in stats.stages.items()}
    return {"docs": stats.l0_input, "semantic": semantic, "kept": stats.kept, "seconds": round(seconds, 1),
            "docs_per_s": stats.l0_input / seconds, "peak_rss_MB": peak_rss_mb(), "steps_docs_per_s": steps}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--semantic-100k", action="store_true")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--semantic", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.semantic)))
        return
    rows = []
    for n in args.sizes:
        modes = [False, True] if n <= 10_000 or args.semantic_100k else [False]
        for semantic in modes:
            cmd = [sys.executable, __file__, "--one", str(make_corpus(n))] + (["--semantic"] if semantic else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append({"size": n, **json.loads(out.stdout.strip().splitlines()[-1])})
            print(json.dumps(rows[-1]), flush=True)
    print(table([{k: v for k, v in r.items() if k != "steps_docs_per_s"} for r in rows]))
    save("l1_pipeline", {"rows": rows})


if __name__ == "__main__":
    main()
