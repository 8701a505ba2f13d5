"""Tier statistics: the SQL files in ``sql/`` run by DuckDB over the tier views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tier_assets.curation.catalog import connect
from tier_assets.curation.storage import TierStore

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
STATS_QUERIES = ("tier_summary", "funnel", "rejection_reasons", "score_distribution", "dup_cluster_sizes")


def sql_text(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text()


def run_sql(store: TierStore, name: str, params: dict[str, Any] | list[Any] | None = None) -> list[dict[str, Any]]:
    """Rows of ``sql/{name}.sql`` over the store's tier views (an in-memory DuckDB per call)."""
    con = connect(store)
    try:
        cur = con.execute(sql_text(name), params or {})
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def all_stats(store: TierStore) -> dict[str, list[dict[str, Any]]]:
    return {name: run_sql(store, name) for name in STATS_QUERIES}


def markdown_table(rows: list[dict[str, Any]], max_rows: int = 200) -> str:
    """Rows as a Markdown table (what the Dagster UI renders as metadata); columns: every key, first seen first."""
    if not rows:
        return "_no rows_"
    cols = list(dict.fromkeys(c for row in rows for c in row))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows[:max_rows]:
        out.append("| " + " | ".join(_cell(row[c]) if c in row else "" for c in cols) + " |")
    if len(rows) > max_rows:
        out.append(f"\n_{len(rows) - max_rows} more rows_")
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")
