"""Run every benchmark in turn (each prints its figures and writes bench/out/<name>.json).

    python bench/run_all.py [name ...]     # e.g. l0_ingest l1_dedup
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["html_extraction", "l0_ingest", "l1_filters", "l1_langid_pii_decontam", "l1_dedup", "l2_scoring",
           "l3_l4"]


def main() -> int:
    names = sys.argv[1:] or BENCHES
    failed = []
    for name in names:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"== {name}: no such benchmark", flush=True)
            failed.append(name)
            continue
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
            failed.append(name)
        print(f"== {name}: {time.perf_counter() - start:.0f}s", flush=True)
    if failed:
        print(f"failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
