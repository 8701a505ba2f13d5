"""A tier-value run: export the arms, screen the evaluation sets, train a proxy per arm and seed, summarize.

The run only measures. Nothing in the pipeline reads its results back: a tier,
threshold or recipe changed because of them is judged by a new run (its versions
differ, so the two results sit side by side).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from tier_assets.curation.exports import StageSpec, default_spec
from tier_assets.curation.l1.decontam import load_benchmarks
from tier_assets.curation.l2.train import current_version
from tier_assets.curation.storage import TierStore
from tier_assets.curation.tier_value import arms as arms_mod
from tier_assets.curation.tier_value import evalsets, proxy
from tier_assets.curation.tier_value.config import BudgetTooLarge, ShortArm, TierValueConfig
from tier_assets.curation.tier_value.summary import (
    METRICS,
    MMLU_CHANCE,
    RESULTS_VERSION,
    compare_neighbours,
    conclusions,
    metric_stats,
    results_dir,
    write_results,
)


@dataclass
class _Arm:
    data: arms_mod.ArmData
    train_blocks: torch.Tensor
    available_tokens: int  # proxy tokens the arm's export holds
    target_tokens: int = 0  # proxy tokens of the arm itself in training (decay mode adds general tokens)


def verify_tiers(
    store: TierStore, config: TierValueConfig, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the comparison; write ``results.json`` and the plot under ``{data_root}/tier_value/``."""
    device = proxy.select_device(config.proxy.device)
    with proxy.cpu_threads(config.proxy.threads if device == "cpu" else None):
        return _verify(store, config, device, log)


def _verify(
    store: TierStore, config: TierValueConfig, device: str, log: Callable[[str], None]
) -> dict[str, Any]:
    started = time.perf_counter()
    cfg = config.proxy
    out = results_dir(store)
    benchmarks = load_benchmarks(None)
    specs = _arm_specs(config)
    exported = [arms_mod.export_arm(store, name, spec, out / "arms", benchmarks) for name, spec in specs]
    for arm in exported:
        log(
            f"arm {arm.name}: {len(arm.texts)} docs, {arm.manifest.delivered_tokens:,} estimated tokens"
            f"{' (SHORT)' if arm.short else ''}; {arm.benchmark_docs_removed} benchmark-contaminated"
            " docs removed"
        )
    _check_short(exported, config)
    general = _general_data(store, config, out, benchmarks) if cfg.mode == "decay" else None

    training = [(a.name, a.doc_ids, a.texts) for a in exported]
    if general is not None:
        training.append((general.name, general.doc_ids, general.texts))
    heldout = evalsets.screen_heldout(
        evalsets.load_texts(config.eval_path), evalsets.training_index(training), config.max_eval_overlap
    )
    log(f"held-out set: {heldout.total} texts, {heldout.removed_count} removed for overlapping training data")
    mmlu = evalsets.load_mmlu(config.mmlu_items)

    base = proxy.BaseModel(cfg.base_model) if cfg.mode == "decay" else None
    codec = base.codec if base else proxy.train_bpe([a.texts for a in exported], cfg.vocab_size)
    arms = _equalize([_tokenize(a, codec, cfg.seq_len) for a in exported], cfg.batch_size)
    if general is not None:
        arms = _mix_general(arms, proxy.blocks(proxy.token_stream(codec, general.texts), cfg.seq_len), cfg)

    def new_model(seed: int) -> torch.nn.Module:
        return base.fresh() if base else proxy.tiny_model(cfg, codec.vocab_size, seed)

    estimate = _estimate_seconds(new_model, arms, config, device, len(heldout.texts), len(mmlu))
    log(
        f"estimated run time {estimate['total_s']:.0f}s ({estimate['seconds_per_step']:.3f}s/step x "
        f"{estimate['train_steps']} steps + evaluation); limit {config.time_limit_s:.0f}s"
    )
    if estimate["total_s"] > config.time_limit_s:
        raise BudgetTooLarge(
            f"estimated {estimate['total_s']:.0f}s exceeds the time limit of {config.time_limit_s:.0f}s "
            f"({estimate['seconds_per_step']:.3f}s per step x {estimate['train_steps']} steps + "
            f"{estimate['eval_s']:.0f}s evaluation); {_what_fits(config, estimate)}"
        )

    runs = []
    for arm in arms:
        if not len(arm.train_blocks):
            log(
                f"arm {arm.data.name}: fewer tokens than one batch of "
                f"{cfg.batch_size} x {cfg.seq_len}; not trained"
            )
            continue
        for seed in config.seeds:
            runs.append(_train_and_evaluate(new_model(seed), arm, seed, codec, heldout, mmlu, config, device))
            log(
                f"arm {arm.data.name} seed {seed}: "
                + ", ".join(f"{k}={v:.4g}" for k, v in runs[-1].items() if k in METRICS and v is not None)
            )
    results = _results(
        store,
        config,
        arms,
        runs,
        heldout,
        mmlu,
        codec,
        estimate,
        device,
        benchmarks.version,
        general,
        time.perf_counter() - started,
    )
    write_results(out, results)
    return results


def _arm_specs(config: TierValueConfig) -> list[tuple[str, StageSpec]]:
    specs = [
        (name, arms_mod.builtin_spec(name, config.domain, config.token_budget, config.data_seed))
        for name in config.arms
    ]
    specs += [
        (spec.name, arms_mod.user_spec(spec, config.domain, config.token_budget, config.data_seed))
        for spec in config.extra_specs
    ]
    names = [n for n, _ in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be distinct, got {names}")
    return specs


def _check_short(exported: list[arms_mod.ArmData], config: TierValueConfig) -> None:
    short = [a for a in exported if a.short]
    if short and config.short_arm == "refuse":
        raise ShortArm(
            "; ".join(
                f"arm {a.name} is short of the {config.token_budget:,}-token budget: "
                + " / ".join(a.manifest.shortfalls)
                for a in short
            )
        )


def _general_data(store: TierStore, config: TierValueConfig, out: Path, benchmarks: Any) -> arms_mod.ArmData:
    """Decay mode's general data: the pre-training mixture, sized so the arm makes ``target_fraction``."""
    f = config.proxy.target_fraction
    budget = math.ceil(config.token_budget * (1 - f) / f)
    spec = replace(
        default_spec("pretrain", budget, config.data_seed),
        name="general",
        domain_weights={config.domain: 1.0},
    )
    return arms_mod.export_arm(store, "general", spec, out / "arms", benchmarks)


def _tokenize(arm: arms_mod.ArmData, codec: proxy.Codec, seq_len: int) -> _Arm:
    stream = proxy.token_stream(codec, arm.texts)
    return _Arm(arm, proxy.blocks(stream, seq_len), len(stream))


def _equalize(arms: list[_Arm], batch_size: int) -> list[_Arm]:
    """Every full arm trains on as many whole batches as the smallest full arm; short arms on all."""
    full = [a for a in arms if not a.data.short]
    common = min((len(a.train_blocks) for a in full), default=0) // batch_size * batch_size
    for arm in arms:
        keep = common if not arm.data.short else len(arm.train_blocks) // batch_size * batch_size
        arm.train_blocks = arm.train_blocks[:keep]
        arm.target_tokens = int(arm.train_blocks.numel())
    return arms


def _mix_general(arms: list[_Arm], general: torch.Tensor, cfg: Any) -> list[_Arm]:
    """Decay mode: each arm's blocks plus the same general blocks (the arm: ``target_fraction``)."""
    for arm in arms:
        n_general = round(len(arm.train_blocks) * (1 - cfg.target_fraction) / cfg.target_fraction)
        mixed = torch.cat([arm.train_blocks, general[:n_general]])
        arm.train_blocks = mixed[: len(mixed) // cfg.batch_size * cfg.batch_size]
    return arms


def _estimate_seconds(
    new_model: Callable[[int], torch.nn.Module],
    arms: list[_Arm],
    config: TierValueConfig,
    device: str,
    n_eval_texts: int,
    n_mmlu: int,
) -> dict[str, Any]:
    """Time a few real steps, then extrapolate to every arm x seed (evaluation: forward-only batches)."""
    cfg = config.proxy
    sample = next((a.train_blocks for a in arms if len(a.train_blocks) >= cfg.batch_size), None)
    if sample is None:
        raise ValueError("no arm has a single batch of training data; raise the token budget")
    per_step = proxy.seconds_per_step(new_model(config.seeds[0]), sample, cfg, device)
    steps = sum(len(a.train_blocks) // cfg.batch_size for a in arms) * cfg.epochs * len(config.seeds)
    eval_batches = math.ceil(config.max_eval_tokens / cfg.seq_len / cfg.batch_size) + math.ceil(
        n_mmlu * 4 / cfg.batch_size
    )
    eval_s = eval_batches * per_step / 2 * len(arms) * len(config.seeds)
    return {
        "seconds_per_step": per_step,
        "train_steps": steps,
        "eval_s": eval_s,
        "total_s": per_step * steps + eval_s,
    }


def _what_fits(config: TierValueConfig, estimate: dict[str, Any]) -> str:
    """The advice for a run over its time limit: a token budget that fits, or fewer evaluation items."""
    room = config.time_limit_s - estimate["eval_s"]
    train_s = estimate["total_s"] - estimate["eval_s"]
    if room <= 0 or train_s <= 0:
        return "evaluation alone does not fit: lower the MMLU items / held-out tokens or raise the limit"
    return (
        f"lower the token budget to about {max(1, int(config.token_budget * room / train_s * 0.9)):,} "
        "or raise the limit"
    )


def _train_and_evaluate(
    model: torch.nn.Module,
    arm: _Arm,
    seed: int,
    codec: proxy.Codec,
    heldout: evalsets.HeldOut,
    mmlu: list[evalsets.MCItem],
    config: TierValueConfig,
    device: str,
) -> dict[str, Any]:
    cfg = config.proxy
    losses = proxy.train(model, arm.train_blocks, cfg, seed, device)
    tail = losses[-max(1, len(losses) // 10) :]
    ppl = proxy.perplexity(model, codec, heldout.texts, cfg, device, config.max_eval_tokens)
    return {
        "arm": arm.data.name,
        "seed": seed,
        "train_tokens": int(arm.train_blocks.numel()),  # distinct tokens; each seen cfg.epochs times
        "steps": len(losses),
        "final_train_loss": statistics.fmean(tail),
        "heldout_perplexity": ppl.perplexity,
        "heldout_bits_per_byte": ppl.bits_per_byte,
        "heldout_tokens": ppl.tokens,
        "mmlu_accuracy": proxy.mc_accuracy(model, codec, mmlu, cfg, device) if mmlu else None,
    }


def _results(
    store: TierStore,
    config: TierValueConfig,
    arms: list[_Arm],
    runs: list[dict[str, Any]],
    heldout: evalsets.HeldOut,
    mmlu: list[evalsets.MCItem],
    codec: proxy.Codec,
    estimate: dict[str, Any],
    device: str,
    benchmark_version: str,
    general: arms_mod.ArmData | None,
    seconds: float,
) -> dict[str, Any]:
    summary = []
    for arm in arms:
        mine = [r for r in runs if r["arm"] == arm.data.name]
        row: dict[str, Any] = {
            "arm": arm.data.name,
            "short": arm.data.short,
            "shortfalls": arm.data.manifest.shortfalls,
            "estimated_tokens_exported": arm.data.manifest.delivered_tokens,
            "proxy_tokens_available": arm.available_tokens,
            "train_tokens": mine[0]["train_tokens"] if mine else 0,
            "arm_train_tokens": arm.target_tokens,
            "docs": len(arm.data.texts),
            "benchmark_docs_removed": arm.data.benchmark_docs_removed,
            "tier_tokens": {t: v["delivered_tokens"] for t, v in arm.data.manifest.tiers.items()},
        }
        row.update(metric_stats(mine, len(mmlu)))
        summary.append(row)
    comparisons = compare_neighbours(summary)
    return {
        "results_version": RESULTS_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_root": str(store.root),
        "domain": config.domain,
        "mode": config.proxy.mode,
        "device": device,
        "seconds": round(seconds, 1),
        "config": _config_dict(config),
        "versions": {
            "proxy_config": config.proxy.fingerprint(),
            "tokenizer": codec.fingerprint,
            "l2_classifier": current_version(store.root, config.domain),
            "benchmark_index": benchmark_version,
            "heldout_sha256": heldout.sha256,
            "arms": {arm.data.name: _arm_versions(store, arm.data, config.domain) for arm in arms},
            **({"general": _arm_versions(store, general, config.domain)} if general else {}),
        },
        "estimate": estimate,
        "heldout": {
            "texts": heldout.total,
            "removed": heldout.removed_count,
            "removed_detail": heldout.removed,
            "scored_texts": len(heldout.texts),
        },
        "mmlu": {"items": len(mmlu), "chance": MMLU_CHANCE},
        "summary": summary,
        "comparisons": comparisons,
        "conclusions": conclusions(summary, comparisons, len(mmlu)),
        "runs": runs,
    }


def _config_dict(config: TierValueConfig) -> dict[str, Any]:
    out = asdict(config)
    out["extra_specs"] = [spec.name for spec in config.extra_specs]
    return out


def _arm_versions(store: TierStore, arm: arms_mod.ArmData, domain: str) -> dict[str, Any]:
    return {
        "spec": asdict(arm.spec),
        "selection_sha256": arm.manifest.selection_sha256,
        "shards_sha256": [s.sha256 for s in arm.manifest.shards],
        "partitions": arms_mod.partition_fingerprints(store, arm.spec, domain),
        "record_versions": arm.manifest.versions,
    }
