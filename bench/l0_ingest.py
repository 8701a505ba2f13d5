"""L0 ingest throughput: JSONL.gz docs/s and MB/s with peak RSS at 10k and 100k documents.

Each size runs in its own process so its peak RSS is its own; a flat RSS from
10k to 100k shows that memory does not grow with the input (streaming reads and
chunked Parquet writes).

    python bench/l0_ingest.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _util import OUT, peak_rss_mb, save, table, timed


def make_corpus(n: int) -> Path:
    from corpus import build_corpus

    path = OUT / f"corpus-{n}.jsonl.gz"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as fh:
            for doc in build_corpus(n, seed=0):
                fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        tmp.rename(path)
    return path


def run_one(path: Path) -> dict:
    from tier_assets.curation.l0 import ingest_partition
    from tier_assets.curation.sources import SourceEntry
    from tier_assets.curation.storage import PartitionRef, TierStore

    with tempfile.TemporaryDirectory() as root:
        store = TierStore(root)
        entry = SourceEntry("bench", "en", "jsonl", str(path), (), path.name)
        stats, seconds = timed(lambda: ingest_partition(store, PartitionRef("L0", "en", "b"), [entry]))
    return {
        "docs": stats.read, "kept": stats.kept, "seconds": round(seconds, 2),
        "docs_per_s": stats.read / seconds,
        "text_MB_per_s": stats.bytes_kept / 1e6 / seconds,
        "gz_MB_per_s": path.stat().st_size / 1e6 / seconds,
        "peak_rss_MB": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    rows = []
    for n in args.sizes:
        path = make_corpus(n)
        out = subprocess.run([sys.executable, __file__, "--one", str(path)], check=True, capture_output=True,
                             text=True)
        rows.append({"size": n, **json.loads(out.stdout.strip().splitlines()[-1])})
    print(table(rows))
    save("l0_ingest", {"rows": rows})


if __name__ == "__main__":
    main()
