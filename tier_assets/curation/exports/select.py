"""Which records a stage takes: per-cell budgets, seeded order, skip-and-continue fill, repetition caps.

Runs in DuckDB over the tier views with small columns only (doc id, domain,
token estimate), so memory stays bounded; docs/decisions.md (ADR 13) explains the walk.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa

from tier_assets.curation.exports.spec import CHARS_PER_TOKEN, DEFAULT_CHARS_PER_TOKEN, StageSpec

STREAM_BATCH_ROWS = 1000

Cell = tuple[str, str]  # (tier, domain)


def _tokens_sql() -> str:
    cases = " ".join(f"WHEN '{d}' THEN {r}" for d, r in CHARS_PER_TOKEN.items())
    return (
        f"CAST(ceil(coalesce(n_chars, 0) / CASE domain {cases} ELSE {DEFAULT_CHARS_PER_TOKEN} END) AS BIGINT)"
    )


def _candidates_sql(spec: StageSpec, tier: str) -> str:
    """Doc ids, domains and token estimates of one tier's records eligible for the stage."""
    view = tier.lower()
    where = ["true"]
    if spec.domain_weights:
        where.append("list_contains($domains, domain)")
    if tier == "L1" and "L2" in spec.tiers:
        # L2 is the selected part of L1: count those documents once, as L2.
        where.append("doc_id NOT IN (SELECT doc_id FROM l2 UNION ALL SELECT unnest(parent_ids) FROM l2)")
    if tier == "L3" and spec.l3_formats:
        where.append("list_contains($l3_formats, json_extract_string(signals, '$.l3.format'))")
    qualify = ""
    if tier == "L2" and spec.l2_top_fraction is not None:
        where.append("score IS NOT NULL")
        qualify = (
            "QUALIFY row_number() OVER (PARTITION BY domain ORDER BY score DESC, doc_id)"
            " <= ceil($top_fraction * count(*) OVER (PARTITION BY domain))"
        )
    return (
        f"SELECT doc_id, '{tier}' AS tier, domain, batch, {_tokens_sql()} AS tokens FROM {view} "
        f"WHERE {' AND '.join(where)} {qualify}"
    )


def bound(spec: StageSpec, sql: str) -> dict[str, Any]:
    """The spec's values for the ``$name`` parameters that ``sql`` uses (DuckDB rejects unused ones)."""
    values = {
        "seed": str(spec.seed),
        "domains": sorted(d for d, w in spec.domain_weights.items() if w > 0),
        "l3_formats": list(spec.l3_formats),
        "top_fraction": spec.l2_top_fraction,
    }
    return {k: values[k] for k in set(re.findall(r"\$([a-z_0-9]+)", sql)) & set(values)}


def allocate(spec: StageSpec, available: Mapping[Cell, int]) -> tuple[dict[str, int], dict[Cell, int]]:
    """Requested tokens per tier and per (tier, domain) cell, floored so they sum to <= the budget."""
    tier_req: dict[str, int] = {}
    cell_req: dict[Cell, int] = {}
    if spec.token_budget is None:
        for (tier, domain), tokens in available.items():
            cell_req[(tier, domain)] = tokens
            tier_req[tier] = tier_req.get(tier, 0) + tokens
        return {t: tier_req.get(t, 0) for t in spec.tiers}, cell_req
    total_w = sum(spec.tier_weights[t] for t in spec.tiers)
    for tier in spec.tiers:
        share = spec.token_budget * spec.tier_weights[tier] / total_w
        tier_req[tier] = math.floor(share)
        if spec.domain_weights:
            dw = {d: w for d, w in spec.domain_weights.items() if w > 0}
        else:
            dw = {d: tok for (t, d), tok in available.items() if t == tier and tok > 0}
        total_d = sum(dw.values())
        for domain in sorted(dw):
            cell_req[(tier, domain)] = math.floor(share * dw[domain] / total_d)
    return tier_req, cell_req


def select(
    con: duckdb.DuckDBPyConnection, spec: StageSpec
) -> tuple[dict[Cell, tuple[int, int]], dict[Cell, int], dict[str, int]]:
    """Create temp table ``sel`` (doc_id, tier, domain, batch, tokens, epoch).

    Returns (docs, tokens) available per cell, the tokens requested per cell and per tier.
    """
    cand = " UNION ALL ".join(_candidates_sql(spec, t) for t in spec.tiers)
    con.execute(f"CREATE TEMP TABLE cand AS {cand}", bound(spec, cand))
    available = {
        (t, d): (int(n), int(tok))
        for t, d, n, tok in con.execute(
            "SELECT tier, domain, count(*), sum(tokens) FROM cand GROUP BY ALL"
        ).fetchall()
    }
    tier_req, cell_req = allocate(spec, {k: v[1] for k, v in available.items()})
    alloc = pa.table(
        {
            "tier": [k[0] for k in cell_req],
            "domain": [k[1] for k in cell_req],
            "requested": pa.array(list(cell_req.values()), pa.int64()),
            "reps": pa.array([spec.repetitions(k[0]) for k in cell_req], pa.int64()),
        }
    )
    con.register("alloc_arrow", alloc)
    con.execute("CREATE TEMP TABLE alloc AS SELECT * FROM alloc_arrow")
    con.unregister("alloc_arrow")
    ranked = """
        CREATE TEMP TABLE ranked AS
        WITH expanded AS (
            SELECT c.doc_id, c.tier, c.domain, c.batch, c.tokens, a.requested, unnest(range(a.reps)) AS epoch
            FROM cand c JOIN alloc a USING (tier, domain)
        )
        SELECT *, row_number() OVER w AS pos, sum(tokens) OVER (w ROWS UNBOUNDED PRECEDING) AS cum
        FROM expanded
        WINDOW w AS (
            PARTITION BY tier, domain
            ORDER BY epoch, md5(concat_ws('/', $seed, 'pick', CAST(epoch AS VARCHAR), doc_id)))
    """
    con.execute(ranked, bound(spec, ranked))
    con.register("picked_arrow", _fill_after_prefix(con))
    con.execute("""
        CREATE TEMP TABLE sel AS
        SELECT doc_id, tier, domain, batch, tokens, CAST(epoch AS BIGINT) AS epoch FROM ranked WHERE cum <= requested
        UNION ALL
        SELECT doc_id, tier, domain, batch, tokens, CAST(epoch AS BIGINT) AS epoch
        FROM ranked JOIN picked_arrow USING (tier, domain, pos)
    """)
    con.unregister("picked_arrow")
    con.execute("DROP TABLE ranked")
    return available, cell_req, tier_req


_PICKED_SCHEMA = pa.schema([("tier", pa.string()), ("domain", pa.string()), ("pos", pa.int64())])


def _fill_after_prefix(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Positions (tier, domain, pos) in ``ranked`` that fill each cell's budget after its seeded prefix.

    Only the epoch the prefix stopped in: a document repeats only once its whole cell was taken.
    """
    tail = con.sql("""
        WITH cut AS (
            SELECT tier, domain, min(pos) AS cut_pos, arg_min(epoch, pos) AS cut_epoch,
                   CAST(arg_min(requested - (cum - tokens), pos) AS BIGINT) AS room
            FROM ranked WHERE cum > requested GROUP BY tier, domain
        )
        SELECT r.tier, r.domain, r.pos, r.tokens, cut.room
        FROM ranked r JOIN cut USING (tier, domain)
        WHERE r.epoch = cut.cut_epoch AND r.pos > cut.cut_pos AND r.tokens <= cut.room
        ORDER BY r.tier, r.domain, r.pos
    """).to_arrow_reader(STREAM_BATCH_ROWS)
    picked: list[dict[str, Any]] = []
    cell, left = None, 0
    for batch in tail:
        for row in batch.to_pylist():
            if (row["tier"], row["domain"]) != cell:
                cell, left = (row["tier"], row["domain"]), row["room"]
            if row["tokens"] <= left:
                left -= row["tokens"]
                picked.append(row)
    return pa.Table.from_pylist(picked, schema=_PICKED_SCHEMA)


def stream_sql(spec: StageSpec) -> str:
    """Selected records with their texts, in a seeded global order (so shards mix tiers and domains)."""
    parts = [
        f"SELECT s.epoch, s.tokens, doc_id, r.tier, domain, r.text, r.parent_ids, r.signals, r.models, "
        f"md5(concat_ws('/', $seed, 'order', CAST(s.epoch AS VARCHAR), s.tier, s.doc_id)) AS k "
        f"FROM sel s JOIN {t.lower()} r USING (doc_id, domain, batch) WHERE s.tier = '{t}'"
        for t in spec.tiers
    ]
    return f"SELECT * EXCLUDE (k) FROM ({' UNION ALL '.join(parts)}) ORDER BY k"
