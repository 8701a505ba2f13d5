"""``catalog.duckdb``: one view per tier and per rejected set over the Parquet files.

The catalog holds views only (no data), so it is cheap to rebuild. Each rebuild
writes a fresh temporary file and renames it over the old one: no two runs ever
write the same DuckDB file, and a reader with the old catalog open keeps working.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from tier_assets.curation.atomic import publish, temp_sibling
from tier_assets.curation.schema import RECORD_SCHEMA, REJECTED_SCHEMA, TIERS
from tier_assets.curation.storage import TierStore

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.list_(pa.string()): "VARCHAR[]",
}


def _empty_select(schema: pa.Schema) -> str:
    cols = ", ".join(f"CAST(NULL AS {_DUCK_TYPES[f.type]}) AS {f.name}" for f in schema)
    return f"SELECT {cols} LIMIT 0"


def view_sql(store: TierStore, tier: str, kind: str) -> str:
    """SQL for one view: the tier's Parquet files, or an empty typed relation if none exist."""
    schema = RECORD_SCHEMA if kind == "tiers" else REJECTED_SCHEMA
    if not store.partitions(tier, kind):
        return _empty_select(schema)
    cols = ", ".join(schema.names)
    return f"SELECT {cols} FROM read_parquet('{store.glob(tier, kind)}', union_by_name = true)"


def view_name(tier: str, kind: str) -> str:
    return tier.lower() if kind == "tiers" else f"{tier.lower()}_rejected"


def create_views(con: duckdb.DuckDBPyConnection, store: TierStore, temporary: bool = False) -> None:
    """Create ``l0 .. l4`` and ``l0_rejected .. l4_rejected`` on ``con``."""
    temp = "TEMP " if temporary else ""
    for tier in TIERS:
        for kind in ("tiers", "rejected"):
            con.execute(f"CREATE OR REPLACE {temp}VIEW {view_name(tier, kind)} AS {view_sql(store, tier, kind)}")
    con.execute(
        f"CREATE OR REPLACE {temp}VIEW all_records AS "
        + " UNION ALL ".join(f"SELECT * FROM {view_name(t, 'tiers')}" for t in TIERS)
    )
    con.execute(
        f"CREATE OR REPLACE {temp}VIEW all_rejected AS "
        + " UNION ALL ".join(f"SELECT * FROM {view_name(t, 'rejected')}" for t in TIERS)
    )


def build_catalog(store: TierStore) -> Path:
    """(Re)write ``catalog.duckdb`` atomically and return its path."""
    store.root.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(store.catalog_path, "duckdb")
    con = duckdb.connect(str(tmp))
    try:
        create_views(con, store)
    finally:
        con.close()
    publish(tmp, store.catalog_path)
    Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return store.catalog_path


def connect(store: TierStore) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the tier views: for stats and queries in a run."""
    con = duckdb.connect(":memory:")
    create_views(con, store, temporary=True)
    return con
