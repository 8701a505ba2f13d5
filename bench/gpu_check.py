"""GPU check: the GPU paths of tier_assets, measured on a machine that has a GPU; skipped, with the reason, where not.

Four checks, each independent (one failing or skipped does not stop the others):

1. ``llm``: the embedded LLM (SmolLM2-135M-Instruct, or ``--llm-model``) on CUDA in bf16: generated
   tokens/s over a batch of prompts, and judge calls/s (next-token Yes/No log-probabilities, as the L2
   and L4 judges ask).
2. ``faiss``: a flat and an IVF inner-product index (384-d, MiniLM's width) on the GPU and on the CPU:
   index build (add, and train for IVF) in vectors/s and k-NN queries/s. Needs ``faiss-gpu``.
3. ``minilm``: MiniLM embeddings (the embedder semantic dedup and L2 scoring use) on CUDA, documents/s.
4. ``ray_l2``: the L2 scoring stage (``ScoreQuality``) on a Ray actor with ``num_gpus=1``, as
   ``TIER_ASSETS_ENGINE=ray`` runs it with GPUs declared: documents/s in the actor and wall-clock
   (actor start included). Uses ``RAY_ADDRESS`` when set, else a Ray of this process.

Documents are the DCLM human-quality dev texts (``../shared/data/quality-dev``; never the holdout).
Prints the figures and writes ``bench/out/gpu_check.json``. Exit 0 when every check passed or was
skipped; 1 when a check failed (its error is in the JSON).

    .venv/bin/python bench/gpu_check.py [--docs 2000] [--prompts 64] [--vectors 200000]
    .venv/bin/python bench/gpu_check.py --ray-cpu   # the Ray check with num_gpus=0 (checks the script on a CPU)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from typing import Any

from _util import SHARED, save

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

DEV = SHARED / "quality-dev" / "dclm-human-quality-dev.jsonl"


class Skipped(Exception):
    """The check cannot run on this machine; the message says why."""


def texts(n: int) -> list[str]:
    rows = [json.loads(line)["text"] for line in DEV.open()]
    return [rows[i % len(rows)] for i in range(n)]


def need_cuda() -> None:
    if not torch.cuda.is_available():
        raise Skipped(f"no CUDA device visible to torch {torch.__version__} "
                      f"(built for CUDA {torch.version.cuda or 'none: a CPU-only build'})")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    sync()
    start = time.perf_counter()
    value = fn()
    sync()
    return value, time.perf_counter() - start


def check_llm(args: argparse.Namespace) -> dict[str, Any]:
    need_cuda()
    from tier_assets.curation.models.llm import LLMConfig, load_llm

    llm = load_llm(LLMConfig(model=args.llm_model, device="cuda", batch_size=args.llm_batch))
    identity = llm.identity()
    docs = texts(args.prompts)
    prompts = [f"Summarize the following text in two sentences.\n\n{t[:1200]}" for t in docs]
    judge = [f"Is the following text well written and informative? Answer Yes or No.\n\n{t[:1500]}" for t in docs]
    llm.generate(prompts[:2], max_new_tokens=8)  # warm-up: kernels, allocator
    gens, gen_s = timed(lambda: llm.generate(prompts, max_new_tokens=args.max_new_tokens))
    _, judge_s = timed(lambda: llm.next_token_logprobs(judge, ["Yes", "No"]))
    tokens_out = sum(g.tokens_out for g in gens)
    return {"model": identity.get("model"), "dtype": identity.get("dtype"), "device": torch.cuda.get_device_name(0),
            "batch_size": args.llm_batch, "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
            "tokens_in": sum(g.tokens_in for g in gens), "tokens_out": tokens_out,
            "generate_s": round(gen_s, 3), "generated_tokens_per_s": round(tokens_out / gen_s, 1),
            "judge_calls": len(judge), "judge_s": round(judge_s, 3), "judge_calls_per_s": round(len(judge) / judge_s, 1),
            "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20)}


def check_faiss(args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    from tier_assets.curation.models.vectors import make_index

    if not hasattr(faiss, "StandardGpuResources"):
        raise Skipped(f"faiss {faiss.__version__} has no GPU support (faiss-cpu is installed): install faiss-gpu "
                      "(e.g. conda install -c pytorch faiss-gpu, or the faiss-gpu-cu12 wheel)")
    if faiss.get_num_gpus() == 0:
        raise Skipped("faiss has GPU support but sees no GPU")
    rng = np.random.default_rng(0)
    base = rng.standard_normal((args.vectors, 384), dtype=np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[rng.choice(len(base), args.queries, replace=False)]
    out: dict[str, Any] = {"vectors": args.vectors, "queries": args.queries, "k": 10}
    for kind in ("flat", "ivf"):
        for device in ("cuda", "cpu"):
            index = make_index(384, kind, nlist=1024, nprobe=16, use_gpu=device == "cuda")
            _, build_s = timed(lambda index=index: index.add(base))
            (_, ids), query_s = timed(lambda index=index: index.search(queries, 10))
            out[f"{kind}_{device}"] = {"build_s": round(build_s, 3), "build_vectors_per_s": round(len(base) / build_s),
                                       "query_s": round(query_s, 3), "queries_per_s": round(len(queries) / query_s),
                                       "self_found": float(np.mean(ids[:, 0] >= 0))}
        out[f"{kind}_query_speedup"] = round(out[f"{kind}_cuda"]["queries_per_s"] / out[f"{kind}_cpu"]["queries_per_s"], 1)
    return out


def check_minilm(args: argparse.Namespace) -> dict[str, Any]:
    need_cuda()
    from tier_assets.curation.models.embedder import get_embedder

    embedder = get_embedder(device="cuda")
    docs = texts(args.docs)
    embedder.encode(docs[:64])  # warm-up
    vectors, seconds = timed(lambda: embedder.encode(docs))
    return {"model": embedder.model_id, "device": embedder.device, "docs": len(docs), "dim": int(vectors.shape[1]),
            "seconds": round(seconds, 3), "docs_per_s": round(len(docs) / seconds, 1)}


def check_ray_l2(args: argparse.Namespace) -> dict[str, Any]:
    gpus = 0.0 if args.ray_cpu else 1.0
    if gpus and not os.environ.get("RAY_ADDRESS"):
        need_cuda()  # a Ray of this process has the GPUs this machine has
    try:
        import ray
    except ImportError as err:
        raise Skipped(f"Ray is not installed ({err}): pip install -e '.[cluster]'") from None

    from tier_assets.curation.engines.ray import RayEngine
    from tier_assets.curation.l2.distill import Seed, distill
    from tier_assets.curation.l2.tier import ScoreQuality
    from tier_assets.curation.pipeline import Models

    engine = RayEngine(os.environ.get("RAY_ADDRESS") or None, workers=1)
    address = engine.connect()
    have = ray.cluster_resources().get("GPU", 0.0)
    if have < gpus:
        raise Skipped(f"the Ray cluster at {address} has {have:g} GPUs")
    rows = [json.loads(line) for line in DEV.open()][:40]
    seeds = [Seed(f"dev-{i}", r["text"][:1500], float(r["label"])) for i, r in enumerate(rows)]
    classifier = distill(seeds, {"model": "human labels", "backend": "none", "recipe": "judge"}, "gpu-check")
    stage = ScoreQuality()
    stage.resources = dataclasses.replace(ScoreQuality.resources, gpus=gpus)
    docs = [{"doc_id": f"doc-{i}", "text": t} for i, t in enumerate(texts(args.docs))]
    runner = engine.pipeline([stage], args.ray_batch)
    result, wall = timed(lambda: runner.run(docs, models=Models(classifier=classifier)))
    stats = runner.stats[stage.name]
    return {"address": address, "num_gpus": gpus, "docs": len(result.kept), "batch": args.ray_batch,
            "wall_s": round(wall, 3), "docs_per_s_wall": round(len(docs) / wall, 1),
            "actor_seconds": round(stats.seconds, 3), "docs_per_s_in_actor": round(stats.docs_per_second, 1),
            "worker_peak_rss_mb": {k: round(v) for k, v in runner.worker_peak_rss_mb.items()}}


CHECKS = {"llm": check_llm, "faiss": check_faiss, "minilm": check_minilm, "ray_l2": check_ray_l2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(CHECKS), help="run only these checks (repeatable)")
    parser.add_argument("--docs", type=int, default=2000, help="documents for MiniLM and the Ray L2 check")
    parser.add_argument("--prompts", type=int, default=64, help="prompts for generation and for judge calls")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--llm-model", default=None, help="a local model directory (default: the embedded SmolLM2)")
    parser.add_argument("--llm-batch", type=int, default=32)
    parser.add_argument("--vectors", type=int, default=200_000, help="FAISS index size")
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--ray-batch", type=int, default=500, help="documents per Ray block")
    parser.add_argument("--ray-cpu", action="store_true", help="run the Ray check with num_gpus=0")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "cpus": os.cpu_count()},
        "results": {}, "skipped": {}, "failed": {}}
    for name in args.only or CHECKS:
        print(f"== {name}", flush=True)
        try:
            figures = CHECKS[name](args)
        except Skipped as why:
            report["skipped"][name] = str(why)
            print(f"   skipped: {why}")
            continue
        except Exception as err:  # a check that cannot complete is reported, and the others still run
            report["failed"][name] = f"{type(err).__name__}: {err}"
            print(f"   FAILED: {type(err).__name__}: {err}")
            traceback.print_exc()
            continue
        report["results"][name] = figures
        for key, value in figures.items():
            print(f"   {key}: {value}")
    save("gpu_check", report)
    if report["skipped"]:
        print("skipped: " + "; ".join(f"{k} ({v})" for k, v in report["skipped"].items()))
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
