"""The corpus report: one self-contained HTML file a person reads (tables + embedded plots).

It shows what the stats SQL in ``sql/`` computes (the retention funnel, L2 score
histograms, rejection reasons, duplicate cluster sizes, the tier summary) as
plots and tables. Plots are PNGs embedded as base64, so the file can be mailed,
attached to a run or opened offline. Tiers without data say so instead of
failing, so the report is useful from the first ingested batch on.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tier_assets.curation.atomic import write_text_atomic
from tier_assets.curation.schema import DOMAINS, TIERS
from tier_assets.curation.stats import all_stats
from tier_assets.curation.storage import TierStore

TOP_REASONS = 12
DOMAIN_COLORS = {"en": "#4C78A8", "zh": "#E45756", "math": "#54A24B", "code": "#B279A2"}
EXTRA_COLORS = ("#F58518", "#72B7B2", "#EECA3B", "#9D755D", "#BAB0AC")
TIER_COLORS = {"L0": "#C6DBEF", "L1": "#9ECAE1", "L2": "#6BAED6", "L3": "#3182BD", "L4": "#08519C"}
SELECTED_COLOR = "#3182BD"
UNSELECTED_COLOR = "#BAB0AC"

Row = dict[str, Any]
Column = tuple[str, str, Callable[[Any], str]]  # key, header, formatter

CSS = """
:root { --fg: #1f2933; --muted: #6b7785; --line: #e3e8ee; --bg: #f6f8fa; --accent: #2f6fb0; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 60px; }
header { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 20px 24px; }
h1 { margin: 0 0 8px; font-size: 26px; }
h2 { margin: 0 0 4px; font-size: 20px; }
h3 { margin: 18px 0 8px; font-size: 16px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 1px 9px; margin-right: 4px; border-radius: 10px; font-size: 12px;
         font-weight: 600; font-family: -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.badge.on { background: #dbeafe; color: #1e4f8a; }
.badge.off { background: #eef1f4; color: #9aa5b1; }
nav { margin: 14px 0 0; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 20px 24px; margin-top: 20px; }
.lede { color: var(--muted); margin: 0 0 14px; font-size: 14px; }
img.plot { display: block; max-width: 100%; height: auto; margin: 6px auto 14px; }
.empty { color: var(--muted); font-style: italic; background: var(--bg); border: 1px dashed var(--line);
         border-radius: 8px; padding: 14px; text-align: center; margin: 8px 0; }
.tablewrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; color: #3e4c59; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fbfcfd; }
tr.total td { font-weight: 600; border-top: 2px solid var(--line); }
tr.absent td { color: #9aa5b1; }
.sub { display: block; color: var(--muted); font-size: 12px; }
.more { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
"""


def write_report(store: TierStore, out_path: str | Path, top_n: int = TOP_REASONS) -> Path:
    """Run the stats SQL over ``store`` and write the HTML report to ``out_path`` (atomically)."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    page = render_report(store, all_stats(store), top_n)
    write_text_atomic(out, page)
    return out


def render_report(store: TierStore, stats: dict[str, list[Row]], top_n: int = TOP_REASONS) -> str:
    """The report page for ``stats`` (the rows of ``stats.all_stats``)."""
    present = store.tiers_present()
    sections = [
        ("overview", "Tiers at a glance", _overview(stats, present)),
        ("funnel", "Retention funnel L0 → L4", _funnel(stats["funnel"])),
        ("scores", "L2 quality scores", _scores(stats["score_distribution"])),
        ("rejections", "Rejection reasons", _rejections(stats["rejection_reasons"], present, top_n)),
        ("dedup", "Duplicate clusters", _dedup(stats["dup_cluster_sizes"])),
        ("summary", "Tier summary by partition", _summary(stats["tier_summary"])),
    ]
    tier_value = _tier_value(store)
    if tier_value is not None:
        sections.append(("tier-value", "Tier value measured by training", tier_value))
    badges = "".join(f'<span class="badge {"on" if t in present else "off"}">{t}</span>' for t in TIERS)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    nav = "".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{html.escape(title)}</h2>{content}</section>'
        for sid, title, content in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>tier_assets report — {html.escape(store.root.name)}</title><style>{CSS}</style></head>"
        '<body><main><header><h1>tier_assets corpus report</h1><dl class="meta">'
        f"<dt>data root</dt><dd>{html.escape(store.uri)}</dd>"
        f"<dt>generated</dt><dd>{generated}</dd>"
        f"<dt>tiers present</dt><dd>{badges}</dd></dl><nav>{nav}</nav></header>"
        f"{body}</main></body></html>\n"
    )


# ---------------------------------------------------------------- sections


def _overview(stats: dict[str, list[Row]], present: list[str]) -> str:
    """One row per tier, so a person sees at once how far the corpus has been promoted."""
    kept: dict[str, Row] = {}
    for r in stats["tier_summary"]:
        t = kept.setdefault(
            r["tier"], {"documents": 0, "characters": 0, "est_tokens": 0, "d": set(), "b": set()}
        )
        t["documents"] += r["documents"]
        t["characters"] += r["characters"] or 0
        t["est_tokens"] += r["est_tokens"] or 0
        t["d"].add(r["domain"])
        t["b"].add(r["batch"])
    rejected: dict[str, int] = {}
    for r in stats["rejection_reasons"]:
        rejected[r["tier"]] = rejected.get(r["tier"], 0) + r["documents"]
    rows = []
    for tier in TIERS:
        t = kept.get(tier)
        if t is None:
            rows.append(f'<tr class="absent"><td>{tier}</td><td colspan="6">no data yet</td></tr>')
            continue
        cells = [
            t["documents"],
            t["characters"],
            t["est_tokens"],
            len(t["d"]),
            len(t["b"]),
            rejected.get(tier, 0),
        ]
        rows.append(
            f"<tr><td>{tier}</td>" + "".join(f'<td class="num">{_int(v)}</td>' for v in cells) + "</tr>"
        )
    head = "".join(
        f'<th class="num">{h}</th>'
        for h in ("documents", "characters", "est. tokens", "domains", "batches", "rejected")
    )
    lede = (
        f"{len(present)} of {len(TIERS)} tiers hold data. Tokens are estimated from characters per domain "
        "(zh 1.5, code 3.2, math 3.5, otherwise 4.0 characters per token)."
    )
    return (
        f'<p class="lede">{lede}</p><div class="tablewrap"><table><thead><tr><th>tier</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _funnel(rows: list[Row]) -> str:
    if not rows:
        return _empty("no data yet: no tier holds records")
    domains = _ordered({r["domain"] for r in rows}, DOMAINS)
    tiers = _ordered({r["tier"] for r in rows}, TIERS)
    docs = {(r["domain"], r["tier"]): r for r in rows}
    fig = Figure(figsize=(11, 4.2))
    ax = fig.subplots()
    width = min(0.8 / len(tiers), 0.3)
    for i, tier in enumerate(tiers):
        xs = [j + (i - (len(tiers) - 1) / 2) * width for j in range(len(domains))]
        ys = [docs[(d, tier)]["documents"] if (d, tier) in docs else 0 for d in domains]
        bars = ax.bar(
            xs, ys, width * 0.92, label=tier, color=TIER_COLORS[tier], edgecolor="#5b6b7b", linewidth=0.4
        )
        ax.bar_label(
            bars, labels=[_int(y) if y else "" for y in ys], fontsize=7.5, padding=2, color="#3e4c59"
        )
    ax.set_yscale("log")
    ax.set_ylim(0.8, max(r["documents"] for r in rows) * 3)
    ax.set_xticks(range(len(domains)), domains)
    ax.set_ylabel("documents (log scale)")
    ax.legend(ncols=len(tiers), loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=9, frameon=False)
    _tidy(ax)
    head = "".join(f'<th class="num">{t}</th>' for t in TIERS)
    body = []
    for d in domains:
        cells = []
        for tier in TIERS:
            r = docs.get((d, tier))
            if r is None:
                cells.append('<td class="num"><span class="sub">—</span></td>')
                continue
            sub = "" if tier == "L0" else f'<span class="sub">{_pct(r["retention_from_l0"])} of L0</span>'
            cells.append(f'<td class="num">{_int(r["documents"])}{sub}</td>')
        body.append(f"<tr><td>{html.escape(d)}</td>{''.join(cells)}</tr>")
    lede = (
        "Documents kept per tier and domain, with the share of L0 that reached each tier. "
        "L3 and L4 hold derived items (rewrites, Q&amp;A, facts), so they can exceed the tier below."
    )
    return (
        f'<p class="lede">{lede}</p>{_img(fig, "retention funnel")}'
        f'<div class="tablewrap"><table><thead><tr><th>domain</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _scores(rows: list[Row]) -> str:
    if not rows:
        return _empty("no data yet: L2 holds no scored records")
    domains = _ordered({r["domain"] for r in rows}, DOMAINS)
    fig = Figure(figsize=(11, 3.2))
    axes = fig.subplots(1, len(domains), sharey=False, squeeze=False)[0]
    lo = min(r["bucket"] for r in rows)
    hi = max(r["bucket"] for r in rows) + 0.5
    for ax, d in zip(axes, domains, strict=True):
        dr = [r for r in rows if r["domain"] == d]
        xs = [r["bucket"] + 0.25 for r in dr]
        sel = [r["selected"] for r in dr]
        uns = [r["unselected"] for r in dr]
        ax.bar(xs, uns, 0.45, color=UNSELECTED_COLOR, label="unselected")
        ax.bar(xs, sel, 0.45, bottom=uns, color=SELECTED_COLOR, label="selected into L2")
        ax.set_title(d, fontsize=11)
        ax.set_xlim(min(lo, 0), max(hi, 5))
        ax.set_xlabel("score")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _tidy(ax)
    axes[0].set_ylabel("documents")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles[::-1], labels[::-1], ncols=2, loc="lower center", bbox_to_anchor=(0.5, 0.98), frameon=False
    )
    table_rows = []
    for d in domains:
        dr = [r for r in rows if r["domain"] == d]
        n_sel = sum(r["selected"] for r in dr)
        n_uns = sum(r["unselected"] for r in dr)
        total = n_sel + n_uns
        table_rows.append(
            {"domain": d, "selected": n_sel, "unselected": n_uns, "rate": n_sel / total if total else None}
        )
    cols: list[Column] = [
        ("domain", "domain", str),
        ("selected", "selected", _int),
        ("unselected", "unselected", _int),
        ("rate", "selection rate", _pct),
    ]
    lede = "Distilled-classifier scores (0–5, 0.5-wide buckets) of every scored L1 document: selected into L2 or not."
    return f'<p class="lede">{lede}</p>{_img(fig, "L2 score histograms")}{_table(table_rows, cols)}'


def _rejections(rows: list[Row], present: list[str], top_n: int) -> str:
    parts = [
        '<p class="lede">Why documents left each tier (every one is kept in the tier\'s rejected set).</p>'
    ]
    cols: list[Column] = [
        ("domain", "domain", str),
        ("stage", "stage", str),
        ("reason", "reason", str),
        ("documents", "documents", _int),
        ("characters", "characters", _int),
    ]
    for tier in TIERS:
        tr = [r for r in rows if r["tier"] == tier]
        parts.append(f"<h3>{tier}</h3>")
        if not tr:
            parts.append(_empty("nothing rejected" if tier in present else "no data yet"))
            continue
        by_reason: dict[str, dict[str, int]] = {}
        for r in tr:
            label = r["reason"] if r["reason"].startswith(r["stage"]) else f"{r['reason']} ({r['stage']})"
            by_reason.setdefault(label, {})
            by_reason[label][r["domain"]] = by_reason[label].get(r["domain"], 0) + r["documents"]
        top = sorted(by_reason.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:top_n]
        domains = _ordered({d for _, per in top for d in per}, DOMAINS)
        slots = max(len(top), 3)  # a lone reason gets a bar as thin as in a full chart
        fig = Figure(figsize=(11, 0.9 + 0.34 * slots))
        ax = fig.subplots()
        labels = [label for label, _ in top][::-1]
        left = [0] * len(labels)
        for d in domains:
            vals = [per.get(d, 0) for _, per in top][::-1]
            ax.barh(labels, vals, left=left, color=_domain_color(d, domains), label=d, height=0.6)
            left = [a + b for a, b in zip(left, vals, strict=True)]
        for y, total in enumerate(left):
            ax.text(total, y, f" {_int(total)}", va="center", fontsize=8, color="#3e4c59")
        ax.set_xlim(0, max(left) * 1.12)
        pad = (slots - len(top)) / 2
        ax.set_ylim(-0.5 - pad, len(top) - 0.5 + pad)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("documents")
        ax.tick_params(axis="y", labelsize=8.5)
        ax.legend(
            title="domain",
            fontsize=8,
            title_fontsize=8,
            frameon=False,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
        )
        _tidy(ax, grid="x")
        total_docs = sum(r["documents"] for r in tr)
        shown = f"top {len(top)} of {len(by_reason)} reasons" if len(by_reason) > len(top) else "all reasons"
        parts.append(f'<p class="lede">{_int(total_docs)} documents rejected; {shown} shown.</p>')
        parts.append(_img(fig, f"{tier} rejection reasons"))
        parts.append(_table(sorted(tr, key=lambda r: -r["documents"]), cols, max_rows=top_n * 2))
    return "".join(parts)


def _dedup(rows: list[Row]) -> str:
    if not rows:
        return _empty("no duplicates found yet (L1 has rejected no document as a duplicate)")
    domain_rank = {d: i for i, d in enumerate(_ordered({r["domain"] for r in rows}, DOMAINS))}
    groups = sorted(
        {(r["domain"], r["method"] or "?") for r in rows}, key=lambda g: (domain_rank[g[0]], g[1])
    )
    sizes = sorted({r["cluster_size"] for r in rows})
    fig = Figure(figsize=(11, 3.4))
    ax = fig.subplots()
    width = min(0.8 / len(groups), 0.3)
    domains = _ordered({g[0] for g in groups}, DOMAINS)
    hatches = {
        m: h for m, h in zip(sorted({g[1] for g in groups}), ("", "//", "..", "xx", "\\\\"), strict=False)
    }
    for i, (d, m) in enumerate(groups):
        per = {
            r["cluster_size"]: r["clusters"] for r in rows if r["domain"] == d and (r["method"] or "?") == m
        }
        xs = [j + (i - (len(groups) - 1) / 2) * width for j in range(len(sizes))]
        ys = [per.get(s, 0) for s in sizes]
        bars = ax.bar(
            xs,
            ys,
            width * 0.92,
            color=_domain_color(d, domains),
            hatch=hatches.get(m, ""),
            edgecolor="white",
            label=f"{d} / {m}",
        )
        ax.bar_label(bars, labels=[_int(y) if y else "" for y in ys], fontsize=7.5, padding=2)
    ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    ax.set_xlabel("cluster size (kept document + its rejected duplicates)")
    ax.set_ylabel("clusters")
    ax.set_ylim(0, max(r["clusters"] for r in rows) * 1.2)
    ax.set_xlim(-0.6, len(sizes) - 0.4)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _tidy(ax)
    cols: list[Column] = [
        ("domain", "domain", str),
        ("method", "method", str),
        ("cluster_size", "cluster size", _int),
        ("clusters", "clusters", _int),
        ("documents", "documents", _int),
    ]
    lede = "L1 duplicate clusters per domain and dedup method (exact, MinHash-LSH, semantic)."
    return f'<p class="lede">{lede}</p>{_img(fig, "duplicate cluster sizes")}{_table(rows, cols)}'


def _summary(rows: list[Row]) -> str:
    if not rows:
        return _empty("no data yet: no tier holds records")
    cols: list[Column] = [
        ("tier", "tier", str),
        ("domain", "domain", str),
        ("batch", "batch", str),
        ("documents", "documents", _int),
        ("characters", "characters", _int),
        ("est_tokens", "est. tokens", _int),
    ]
    return _table(rows, cols)


def _tier_value(store: TierStore) -> str | None:
    """The latest ``tier-assets verify-tiers`` results (table, plot, conclusions), when a run wrote them."""
    from tier_assets.curation.tier_value import load_results, table_rows
    from tier_assets.curation.tier_value.summary import plot_png

    results = load_results(store)
    if results is None:
        return None
    rows = table_rows(results)
    versions = results["versions"]
    lede = (
        f"{results['domain']} arms, {results['mode']} proxy, mean [95% CI] over {len(results['config']['seeds'])} "
        f"seed(s), {results['created']}; held-out: {results['heldout']['scored_texts']} texts "
        f"({results['heldout']['removed']} removed for overlapping training data); L2 classifier "
        f"{versions['l2_classifier']}, tokenizer {versions['tokenizer']}, proxy config {versions['proxy_config']}"
    )
    plot = base64.b64encode(plot_png(results)).decode("ascii")
    words = "".join(f"<li>{html.escape(line)}</li>" for line in results["conclusions"])
    return (
        f'<p class="lede">{html.escape(lede)}</p>{_table(rows, [(k, k, str) for k in rows[0]])}'
        f'<img class="plot" alt="tier value per arm" src="data:image/png;base64,{plot}"><ul>{words}</ul>'
    )


# ---------------------------------------------------------------- helpers


def _table(rows: Sequence[Row], cols: Sequence[Column], max_rows: int | None = None) -> str:
    num = {key: ' class="num"' if fmt in (_int, _pct) else "" for key, _, fmt in cols}
    head = "".join(f"<th{num[k]}>{html.escape(h)}</th>" for k, h, _ in cols)
    shown = rows if max_rows is None else rows[:max_rows]
    body = "".join(
        "<tr>" + "".join(f"<td{num[k]}>{html.escape(fmt(r.get(k)))}</td>" for k, _, fmt in cols) + "</tr>"
        for r in shown
    )
    more = (
        f'<p class="more">{len(rows) - len(shown)} more rows not shown.</p>' if len(rows) > len(shown) else ""
    )
    return f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}'


def _img(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", facecolor="white")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _tidy(ax: Any, grid: str = "y") -> None:
    """Light value grid, no top/right frame: the data, not the chart furniture."""
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis=grid, color="#e3e8ee", linewidth=0.8)
    ax.set_axisbelow(True)


def _empty(message: str) -> str:
    return f'<p class="empty">{html.escape(message)}</p>'


def _ordered(values: Iterable[str], order: Sequence[str]) -> list[str]:
    """Known names in their canonical order, then any others alphabetically."""
    vals = set(values)
    return [v for v in order if v in vals] + sorted(vals - set(order))


def _domain_color(domain: str, domains: Sequence[str]) -> str:
    if domain in DOMAIN_COLORS:
        return DOMAIN_COLORS[domain]
    extras = [d for d in domains if d not in DOMAIN_COLORS]
    return EXTRA_COLORS[extras.index(domain) % len(EXTRA_COLORS)]


def _int(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"
