"""Results of a tier-value run as numbers, words, a table and a plot (no torch: the HTML report uses it).

A metric per arm is a mean with a 95% t-interval over seeds; two arms differ for
real only when their intervals do not overlap, and every comparison is also said
in words, including "less than the noise" when that is all a run shows.
"""

from __future__ import annotations

import base64
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

from tier_assets.curation.atomic import publish, temp_sibling, write_text_atomic
from tier_assets.curation.storage import TierStore

RESULTS_NAME = "results.json"
PLOT_NAME = "tier_value.png"
RESULTS_VERSION = 1
MMLU_CHANCE = 0.25
# metric -> (label, lower is better)
METRICS = {
    "final_train_loss": ("final training loss", True),
    "heldout_perplexity": ("held-out perplexity", True),
    "heldout_bits_per_byte": ("held-out bits per byte", True),
    "mmlu_accuracy": ("MMLU accuracy", False),
}


def results_dir(store: TierStore) -> Path:
    return store.root / "tier_value"


# ---------------------------------------------------------------- statistics and words


def mean_ci(values: list[float], level: float = 0.95) -> dict[str, Any]:
    """Mean and a t-interval over seeds (None with one seed: no spread to estimate)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "n": len(values)}
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": len(values)}


def compare(a: str, b: str, metric: str, sa: dict[str, Any], sb: dict[str, Any]) -> dict[str, Any]:
    """Is ``b`` better than ``a`` beyond the noise? Real only when the 95% intervals do not overlap."""
    label, lower_better = METRICS[metric]
    if sa["ci_low"] is None or sb["ci_low"] is None:
        verdict, words = "unknown", f"{label}: {a} vs {b} cannot be judged with one seed"
    elif sa["ci_high"] < sb["ci_low"] or sb["ci_high"] < sa["ci_low"]:
        b_better = (sb["mean"] < sa["mean"]) == lower_better
        verdict = "b_better" if b_better else "a_better"
        winner, loser = (b, a) if b_better else (a, b)
        words = (
            f"{label}: {winner} is better than {loser} ({sb['mean'] if b_better else sa['mean']:.4g} vs "
            f"{sa['mean'] if b_better else sb['mean']:.4g}); the 95% intervals do not overlap, "
            "so this is real"
        )
    else:
        verdict = "within_noise"
        words = (
            f"{label}: {a} ({sa['mean']:.4g}) and {b} ({sb['mean']:.4g}) differ by less than the noise "
            "(their 95% intervals overlap); this run does not show which is better"
        )
    return {"a": a, "b": b, "metric": metric, "verdict": verdict, "words": words}


def metric_stats(runs: list[dict[str, Any]], n_mmlu: int) -> dict[str, dict[str, Any] | None]:
    """Every metric of one arm's runs as mean + 95% interval; MMLU's interval also holds item-sampling noise.

    The seeds vary the model, not the items: with 200 items a guesser's accuracy
    alone moves by about +-6 points, so the binomial half-width is added (in
    quadrature) to the interval over seeds before two arms are compared.
    """
    out: dict[str, dict[str, Any] | None] = {}
    for metric in METRICS:
        values = [r[metric] for r in runs if r[metric] is not None]
        stat = mean_ci(values) if values else None
        if stat is not None and metric == "mmlu_accuracy" and stat["ci_low"] is not None and n_mmlu:
            seed_half = stat["ci_high"] - stat["mean"]
            p = stat["mean"]
            item_half = 1.96 * math.sqrt(max(p * (1 - p), 1e-12) / n_mmlu)
            half = math.hypot(seed_half, item_half)
            stat = {**stat, "ci_low": p - half, "ci_high": p + half, "item_half_width": item_half}
        out[metric] = stat
    return out


def compare_neighbours(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each arm against the next on perplexity and MMLU; a short arm is not judged at equal budget."""
    out = []
    for a, b in zip(summary, summary[1:], strict=False):
        for metric in ("heldout_perplexity", "mmlu_accuracy"):
            if a[metric] is None or b[metric] is None:
                continue
            short = [row["arm"] for row in (a, b) if row["short"]]
            if short:
                out.append(
                    {
                        "a": a["arm"],
                        "b": b["arm"],
                        "metric": metric,
                        "verdict": "not_comparable",
                        "words": f"{METRICS[metric][0]}: {a['arm']} vs {b['arm']} is not a comparison at "
                        f"equal budget (arm {', '.join(short)} is short); no verdict",
                    }
                )
            else:
                out.append(compare(a["arm"], b["arm"], metric, a[metric], b[metric]))
    return out


def conclusions(summary: list[dict[str, Any]], comparisons: list[dict[str, Any]], n_mmlu: int) -> list[str]:
    """The run in sentences: every comparison, short arms, and what MMLU at chance means."""
    lines = [c["words"] for c in comparisons]
    for row in summary:
        if not row["train_tokens"]:
            lines.append(f"arm {row['arm']} was not trained: it holds fewer tokens than one batch")
        elif row["short"]:
            lines.append(
                f"arm {row['arm']} is short: trained on all of its {row['train_tokens']:,} proxy tokens, "
                f"fewer than the other arms ({'; '.join(row['shortfalls'])})"
            )
    accs = {row["arm"]: row["mmlu_accuracy"]["mean"] for row in summary if row["mmlu_accuracy"] is not None}
    band = chance_band(n_mmlu)
    above = [f"{arm} ({a:.1%})" for arm, a in accs.items() if a > band[1]]
    if above:
        lines.append(
            f"MMLU accuracy above what guessing gives on {n_mmlu} items (up to {band[1]:.1%}): "
            f"{', '.join(above)}"
        )
    elif accs and all(band[0] <= a <= band[1] for a in accs.values()):
        lines.append(
            f"MMLU accuracy is within what guessing gives on {n_mmlu} items ({band[0]:.1%} to {band[1]:.1%} "
            f"around {MMLU_CHANCE:.0%}) for every arm: the proxy cannot answer MMLU, so accuracy says "
            "nothing about the tiers here (the interval over seeds does not include item-sampling noise)"
        )
    return lines


def chance_band(n_items: int, z: float = 1.96) -> tuple[float, float]:
    """Accuracies a guesser reaches on ``n_items`` four-way items 95% of the time (normal approx.)."""
    half = z * math.sqrt(MMLU_CHANCE * (1 - MMLU_CHANCE) / max(1, n_items))
    return MMLU_CHANCE - half, MMLU_CHANCE + half


# ---------------------------------------------------------------- output


def write_results(out: Path, results: dict[str, Any]) -> Path:
    """``results.json`` and the plot, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / RESULTS_NAME, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    tmp = temp_sibling(out / PLOT_NAME)
    tmp.write_bytes(plot_png(results))
    publish(tmp, out / PLOT_NAME)
    return out / RESULTS_NAME


def load_results(store: TierStore) -> dict[str, Any] | None:
    path = results_dir(store) / RESULTS_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _fmt(stat: dict[str, Any] | None) -> str:
    if stat is None:
        return "—"
    if stat["ci_low"] is None:
        return f"{stat['mean']:.4g}"
    return f"{stat['mean']:.4g} [{stat['ci_low']:.4g}, {stat['ci_high']:.4g}]"


def table_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per arm: tokens and every metric as ``mean [95% CI]`` over seeds."""
    return [
        {
            "arm": row["arm"] + (" (short)" if row["short"] else ""),
            "train tokens": f"{row['train_tokens']:,}",
            **{METRICS[m][0]: _fmt(row[m]) for m in METRICS},
        }
        for row in results["summary"]
    ]


def markdown(results: dict[str, Any]) -> str:
    """The table and the conclusions as Markdown."""
    rows = table_rows(results)
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    n = len(results["config"]["seeds"])
    proxy = results["config"]["proxy"]
    lines += [
        "",
        f"mean [95% CI] over {n} seed(s); train tokens: distinct {proxy['mode']}-proxy tokens, each "
        f"seen {proxy['epochs']} time(s); held-out: {results['heldout']['scored_texts']} texts "
        f"({results['heldout']['removed']} removed for overlapping training data); "
        f"MMLU: {results['mmlu']['items']} items, chance {MMLU_CHANCE:.0%}",
        "",
    ]
    lines += [f"- {line}" for line in results["conclusions"]]
    return "\n".join(lines)


def plot_png(results: dict[str, Any]) -> bytes:
    """Held-out perplexity and MMLU accuracy per arm with 95% intervals, as PNG bytes."""
    from matplotlib.figure import Figure

    shown = [m for m in ("heldout_perplexity", "mmlu_accuracy") if any(r[m] for r in results["summary"])]
    fig = Figure(figsize=(4.2 * len(shown), 3.2))
    for i, metric in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), i + 1)
        rows = [r for r in results["summary"] if r[metric]]
        means = [r[metric]["mean"] for r in rows]
        errs = [
            [
                m - (r[metric]["ci_low"] if r[metric]["ci_low"] is not None else m)
                for r, m in zip(rows, means, strict=True)
            ],
            [
                (r[metric]["ci_high"] if r[metric]["ci_high"] is not None else m) - m
                for r, m in zip(rows, means, strict=True)
            ],
        ]
        labels = [r["arm"] + ("\n(short)" if r["short"] else "") for r in rows]
        ax.bar(labels, means, yerr=errs, capsize=4, color="#6BAED6")
        if metric == "mmlu_accuracy":
            ax.axhline(MMLU_CHANCE, color="#E45756", linestyle="--", linewidth=1, label="chance")
            ax.legend(frameon=False)
        ax.set_title(METRICS[metric][0] + (" (lower is better)" if METRICS[metric][1] else ""), fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def plot_markdown(results: dict[str, Any]) -> str:
    """The plot as a Markdown image with the PNG inline (what the Dagster UI renders)."""
    return f"![tier value](data:image/png;base64,{base64.b64encode(plot_png(results)).decode('ascii')})"
