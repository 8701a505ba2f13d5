"""``catalog.duckdb``: one view per tier and per rejected set over the Parquet files.

The catalog holds views only (no data), so it is cheap to rebuild. Each rebuild
writes a fresh temporary file and renames it over the old one: no two runs ever
write the same DuckDB file, and a reader with the old catalog open keeps working.

On object storage (``s3://``) the views read the committed file of each partition (its commit marker
names it) through pyarrow datasets registered with DuckDB, since DuckDB's httpfs extension may not be
installable. Registered datasets live only in their connection, so ``connect`` builds them per call and
the catalog file is replaced by ``catalog.sql`` in the local state directory: the same views over the
committed ``s3://`` files, for a DuckDB that has httpfs (``duckdb -init catalog.sql``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from tier_assets.curation.atomic import publish, temp_sibling, write_text_atomic
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


def remote_view_sql(con: duckdb.DuckDBPyConnection, store: TierStore, tier: str, kind: str) -> str:
    """Object storage: register the committed files as a pyarrow dataset on ``con``; SQL that reads it."""
    schema = RECORD_SCHEMA if kind == "tiers" else REJECTED_SCHEMA
    files = store.committed_files(tier, kind)
    if not files:
        return _empty_select(schema)
    assert store.remote is not None
    name = f"{view_name(tier, kind)}_files"
    con.register(name, ds.dataset(files, schema=schema, format="parquet", filesystem=store.remote.filesystem))
    return f"SELECT {', '.join(schema.names)} FROM {name}"


def view_name(tier: str, kind: str) -> str:
    return tier.lower() if kind == "tiers" else f"{tier.lower()}_rejected"


def create_views(con: duckdb.DuckDBPyConnection, store: TierStore, temporary: bool = False) -> None:
    """Create ``l0 .. l4`` and ``l0_rejected .. l4_rejected`` on ``con``.

    Pair commits a killed writer left are finished first: DuckDB globs the files, bypassing the store.
    """
    store.recover()
    temp = "TEMP " if temporary else ""
    for tier in TIERS:
        for kind in ("tiers", "rejected"):
            sql = remote_view_sql(con, store, tier, kind) if store.remote else view_sql(store, tier, kind)
            con.execute(f"CREATE OR REPLACE {temp}VIEW {view_name(tier, kind)} AS {sql}")
    con.execute(
        f"CREATE OR REPLACE {temp}VIEW all_records AS "
        + " UNION ALL ".join(f"SELECT * FROM {view_name(t, 'tiers')}" for t in TIERS)
    )
    con.execute(
        f"CREATE OR REPLACE {temp}VIEW all_rejected AS "
        + " UNION ALL ".join(f"SELECT * FROM {view_name(t, 'rejected')}" for t in TIERS)
    )


def build_catalog(store: TierStore) -> Path:
    """(Re)write ``catalog.duckdb`` (object storage: ``catalog.sql``) atomically and return its path."""
    if store.remote:
        return write_text_atomic(store.catalog_path, remote_catalog_script(store))
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


def remote_catalog_script(store: TierStore) -> str:
    """DuckDB SQL: the tier views over the committed ``s3://`` files, for a DuckDB with httpfs (not run here)."""
    assert store.remote is not None
    endpoint = urlparse(store.remote.endpoint or "")
    secret = ["TYPE s3", "PROVIDER credential_chain"]
    if endpoint.netloc:
        secret += [f"ENDPOINT '{endpoint.netloc}'", "URL_STYLE 'path'", f"USE_SSL {endpoint.scheme == 'https'}"]
    lines = [f"-- tier_assets catalog of {store.uri}: the files its commit markers name (rebuilt after every run).",
             "-- Needs DuckDB's httpfs and aws extensions: duckdb -init catalog.sql",
             "INSTALL httpfs; LOAD httpfs; INSTALL aws; LOAD aws;",
             f"CREATE OR REPLACE SECRET tier_assets ({', '.join(secret)});"]
    for tier in TIERS:
        for kind in ("tiers", "rejected"):
            schema = RECORD_SCHEMA if kind == "tiers" else REJECTED_SCHEMA
            files = ", ".join(f"'s3://{f}'" for f in store.committed_files(tier, kind))
            body = (f"SELECT {', '.join(schema.names)} FROM read_parquet([{files}], union_by_name = true)" if files
                    else _empty_select(schema))
            lines.append(f"CREATE OR REPLACE VIEW {view_name(tier, kind)} AS {body};")
    for name, kind in (("all_records", "tiers"), ("all_rejected", "rejected")):
        union = " UNION ALL ".join(f"SELECT * FROM {view_name(t, kind)}" for t in TIERS)
        lines.append(f"CREATE OR REPLACE VIEW {name} AS {union};")
    return "\n".join(lines) + "\n"


def connect(store: TierStore) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the tier views: for stats and queries in a run."""
    if store.remote:
        store.remote.check()  # refused credentials fail here in one line, not inside a query
    con = duckdb.connect(":memory:")
    create_views(con, store, temporary=True)
    return con
