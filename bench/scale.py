"""Per-stage throughput of L1 and L2 scoring, local engine vs Ray with 1 and 2 workers, on this machine.

The corpus is ``bench/corpus.py``'s real-paragraph documents (as ``bench/l1_pipeline.py``).
Each mode runs in its own process (its own imports, its own peak RSS): ``local`` is the
``Pipeline``; ``ray-N`` is the Ray engine with N actors per operator on a Ray started in
that process (``ray.init(num_cpus=2)``), or on ``RAY_ADDRESS`` when set. L1 runs every
record stage plus dedup (semantic dedup off: it is a partition step, on the driver in both
engines); L2 scores the L1 survivors with a classifier distilled from the human quality
labels, then selects. Wall time includes starting the actors (imports, the stages'
state), which is the overhead a small partition pays; per-stage docs/s are per worker
(stage seconds summed over workers). ``ray.init`` itself is reported apart.

``--dedup`` measures MinHash dedup alone (``engines/ray_dedup.py``) on the corpus as one
batch deciding against an earlier one (its first half): documents/s of the signatures,
of the band buckets (candidate pairs) and of the whole step, local vs Ray with 2 workers,
each Ray figure cold (worker processes starting) and warm (a second run), and the
driver's peak RSS. Figures go to ``bench/out/scale_dedup.json``.

    python bench/scale.py [--docs 300 3000] [--batch 250]
    python bench/scale.py --dedup [--docs 2000 20000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _util import SHARED, peak_rss_mb, save, table
from l0_ingest import make_corpus

MODES = ("local", "ray-1", "ray-2")


def classifier():
    from tier_assets.curation.l2.distill import Seed, distill

    rows = [json.loads(line) for line in (SHARED / "quality-dev" / "dclm-human-quality-dev.jsonl").open()][:40]
    seeds = [Seed(f"dev-{i}", r["text"][:1500], float(r["label"])) for i, r in enumerate(rows)]
    return distill(seeds, {"model": "human labels", "backend": "none", "recipe": "judge"}, "bench-scale")


def run_one(path: Path, mode: str, batch: int) -> dict:
    import os

    from tier_assets.curation.engines.local import LocalEngine
    from tier_assets.curation.l0 import ingest_partition
    from tier_assets.curation.l1.settings import load_l1_settings
    from tier_assets.curation.l1.tier import l1_stages, read_l0_docs
    from tier_assets.curation.l2.settings import L2Settings
    from tier_assets.curation.l2.tier import from_l1, l2_stages
    from tier_assets.curation.pipeline import Models
    from tier_assets.curation.sources import SourceEntry
    from tier_assets.curation.storage import PartitionRef, TierStore

    engine, init_s = LocalEngine(), 0.0
    if mode != "local":
        import ray

        from tier_assets.curation.engines.ray import RayEngine

        engine = RayEngine(os.environ.get("RAY_ADDRESS") or None, workers=int(mode.split("-")[1]))
        start = time.perf_counter()
        if not engine.address:
            ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
        engine.connect()
        init_s = time.perf_counter() - start
    clf = classifier()
    out: dict = {"mode": mode, "ray_init_s": round(init_s, 1)}
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        store = TierStore(root)
        ingest_partition(store, PartitionRef("L0", "en", "b"), [SourceEntry("bench", "en", "jsonl", str(path), (), "c")])
        l1 = l1_stages(load_l1_settings("en", {"dedup": {"semantic": False}}), [])
        kept, out["L1"] = timed(engine.pipeline(l1, batch), read_l0_docs(store, "en", "b"), Models(), rss)
        ref = PartitionRef("L1", "en", "b")  # L2 reads what L1 wrote, as run_l2_partition does
        store.write(ref, kept)
        l2_docs = [from_l1(r) for r in store.read(ref).to_pylist()]
        _, out["L2"] = timed(engine.pipeline(l2_stages(L2Settings("en", records_per_batch=batch)), batch), l2_docs,
                             Models(classifier=clf), rss)
    out["driver_peak_rss_MB"] = round(peak_rss_mb())
    out["worker_peak_rss_MB"] = sorted(round(mb) for mb in rss.values())
    return out


def timed(pipeline, docs: list, models, rss: dict[str, float]) -> tuple[list, dict]:
    """Run ``pipeline``: its kept documents, and its wall time and per-stage docs/s; worker RSS goes into ``rss``."""
    start = time.perf_counter()
    result = pipeline.run(docs, models=models)
    seconds = time.perf_counter() - start
    for pid, mb in getattr(pipeline, "worker_peak_rss_mb", {}).items():
        rss[pid] = max(mb, rss.get(pid, 0.0))
    return result.kept, {"docs": len(docs), "kept": len(result.kept), "seconds": round(seconds, 1),
                         "docs_per_s": round(len(docs) / seconds, 1),
                         "stages_docs_per_s_per_worker": {n: round(s.docs_per_second, 1)
                                                          for n, s in pipeline.stats.items()}}


def dedup_one(path: Path, mode: str, batch: int) -> dict:
    """Signatures, candidate pairs and the whole MinHash dedup step, in this process, local or on Ray."""
    import gzip

    import numpy as np
    import pyarrow as pa

    from tier_assets.curation.l1.dedup import Dedup, DedupConfig, compute_signatures
    from tier_assets.curation.l1.dedup.clusters import lsh_candidates
    from tier_assets.curation.l1.dedup.signatures import matrix

    config = DedupConfig(semantic=False)
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    half = len(rows) // 2
    earlier_docs = [{"doc_id": f"a{i}", "batch": "a", "text": r["text"]} for i, r in enumerate(rows[:half])]
    docs = [{"doc_id": f"b{i}", "batch": "b", "text": r["text"]} for i, r in enumerate(rows[half:])]
    earlier = [compute_signatures(earlier_docs, config)]
    out: dict = {"mode": mode, "docs": len(docs), "prefix_docs": len(docs) + half}
    if mode == "local":
        steps = {"signatures": lambda: compute_signatures(docs, config),
                 "candidates": lambda sigs: lsh_candidates(sigs, config.bands, config.rows, config.seed),
                 "dedup": lambda: Dedup(config, earlier).run([dict(d) for d in docs])}
        runs = ("warm",)
    else:
        import ray

        from tier_assets.curation.engines.ray import _RETRIES
        from tier_assets.curation.engines.ray_dedup import candidates_on_ray, run_dedup, signatures_on_ray

        workers = int(mode.split("-")[1])
        start = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
        ray.data.DataContext.get_current().enable_progress_bars = False
        out["ray_init_s"] = round(time.perf_counter() - start, 1)
        steps = {"signatures": lambda: signatures_on_ray(docs, config, None, batch, workers, _RETRIES),
                 "candidates": lambda sigs: candidates_on_ray(sigs, config.bands, config.rows, config.seed,
                                                              block_size=batch, workers=workers, retries=3),
                 "dedup": lambda: run_dedup(Dedup(config, earlier), [dict(d) for d in docs], batch, workers,
                                            _RETRIES)}
        runs = ("cold", "warm")
    prefix = pa.concat_tables([earlier[0], compute_signatures(docs, config)])
    sigs = matrix(prefix["minhash"], config.num_perm, np.uint32, "minhash")
    for run in runs:
        for name, fn in steps.items():
            start = time.perf_counter()
            value = fn(sigs) if name == "candidates" else fn()
            seconds = time.perf_counter() - start
            n = len(sigs) if name == "candidates" else len(docs)
            out[f"{name}_{run}_docs_per_s"] = round(n / seconds)
            if name == "candidates":
                out["candidate_pairs"] = len(value[0])
            if name == "dedup":
                out["rejected"] = len(value.rejected)
    out["driver_peak_rss_MB"] = round(peak_rss_mb())
    return out


def dedup_main(args: argparse.Namespace) -> None:
    rows = []
    for n in args.docs:
        for mode in ("local", "ray-2"):
            cmd = [sys.executable, __file__, "--dedup", "--one", str(make_corpus(n)), "--mode", mode,
                   "--batch", str(args.batch)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    columns = ["mode", "docs", "prefix_docs", "ray_init_s", "candidate_pairs", "rejected", "driver_peak_rss_MB",
               *(f"{step}_{run}_docs_per_s" for step in ("signatures", "candidates", "dedup") for run in ("cold", "warm"))]
    print(table([{c: r.get(c, "-") for c in columns} for r in rows]))
    save("scale_dedup", {"batch": args.batch, "rows": rows})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--batch", type=int, default=250, help="records_per_batch (a Ray block)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--dedup", action="store_true", help="MinHash dedup alone: local vs Ray (2 workers)")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps((dedup_one if args.dedup else run_one)(args.one, args.mode, args.batch)))
        return
    if args.dedup:
        dedup_main(args)
        return
    rows = []
    for n in args.docs:
        for mode in args.modes:
            cmd = [sys.executable, __file__, "--one", str(make_corpus(n)), "--mode", mode, "--batch", str(args.batch)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append({"size": n, **json.loads(done.stdout.strip().splitlines()[-1])})
            print(json.dumps(rows[-1]), flush=True)
    summary = [{"docs": r["size"], "mode": r["mode"], "ray_init_s": r["ray_init_s"],
                "L1_s": r["L1"]["seconds"], "L1_docs/s": r["L1"]["docs_per_s"],
                "L2_docs": r["L2"]["docs"], "L2_s": r["L2"]["seconds"], "L2_docs/s": r["L2"]["docs_per_s"],
                "driver_RSS_MB": r["driver_peak_rss_MB"], "worker_RSS_MB": r["worker_peak_rss_MB"] or "-"}
               for r in rows]
    print(table(summary))
    stages = [{"stage": name, **{f"{r['mode']}@{r['size']}": r[tier]["stages_docs_per_s_per_worker"][name]
                                 for r in rows}}
              for tier in ("L1", "L2") for name in rows[-1][tier]["stages_docs_per_s_per_worker"]]
    print(table(stages))
    save("scale", {"batch": args.batch, "rows": rows})


if __name__ == "__main__":
    main()
