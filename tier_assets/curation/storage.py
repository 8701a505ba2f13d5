"""Tier storage: one Parquet file per tier, partition and kind under a data root.

Layout (hive style, so DuckDB and Polars read it with partition columns)::

    {root}/tiers/{tier}/domain={d}/batch={b}/part.parquet      kept records
    {root}/rejected/{tier}/domain={d}/batch={b}/part.parquet   rejected, with stage + reason
    {root}/catalog.duckdb                                      one view per tier and rejected set

Writes go to a temporary file in the same directory and are renamed into place,
so a crashed run leaves the last good partition and a re-run is idempotent.

A data root ``s3://bucket/prefix`` keeps the tiers in the bucket, each partition published by a commit
marker (``object_partitions``), and everything else in a local state directory (``objectstore``):
``root`` is then that directory and ``uri`` the bucket's URI.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tier_assets.curation import object_partitions as objects
from tier_assets.curation.atomic import publish, temp_sibling
from tier_assets.curation.objectstore import ObjectRoot, is_uri
from tier_assets.curation.schema import JSON_COLUMNS, RECORD_SCHEMA, REJECTED_SCHEMA, TIERS, loads, to_table

KINDS = ("tiers", "rejected")


@dataclass(frozen=True)
class PartitionRef:
    tier: str
    domain: str
    batch: str

    def __str__(self) -> str:
        return f"{self.tier}/{self.domain}/{self.batch}"


class AtomicParquetWriter:
    """Streams record chunks into a temp Parquet file; ``commit`` renames it into place.

    Memory stays bounded by the chunk size, not the partition size.
    """

    def __init__(self, path: Path, schema: pa.Schema, chunk_rows: int = 2000):
        self.path = path
        self.schema = schema
        self.chunk_rows = chunk_rows
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_sibling(path)
        self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self._buffer: list[dict[str, Any]] = []
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self.chunk_rows:
            self.flush()

    def write_table(self, table: pa.Table) -> None:
        self.flush()
        self._writer.write_table(table.select(self.schema.names).cast(self.schema))
        self.rows += table.num_rows

    def flush(self) -> None:
        if self._buffer:
            table = to_table(self._buffer, rejected=self.schema is REJECTED_SCHEMA)
            self._writer.write_table(table)
            self.rows += table.num_rows
            self._buffer = []

    def commit(self) -> None:
        self.flush()
        self._writer.close()
        publish(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class ObjectParquetWriter(AtomicParquetWriter):
    """Spools the partition into a local temp file; ``commit`` uploads it and writes its commit marker."""

    def __init__(self, remote: ObjectRoot, pkey: str, ids: tuple[str, str, str, str], spool: Path,
                 schema: pa.Schema, chunk_rows: int = 2000):
        super().__init__(spool, schema, chunk_rows)
        self.remote, self.pkey, self.ids = remote, pkey, ids

    def commit(self) -> None:
        self.flush()
        self._writer.close()
        try:
            objects.commit(self.remote, self.pkey, self.tmp, self.rows, self.ids)
        finally:
            self.tmp.unlink(missing_ok=True)


class TierStore:
    """Paths, atomic writes and reads of tier partitions under one data root (a local path or ``s3://``)."""

    def __init__(self, root: str | Path | None = None):
        text = str(root) if root else os.environ.get("TIER_ASSETS_DATA_ROOT", "data")
        self.remote = ObjectRoot.parse(text) if is_uri(text) else None
        self.root = self.remote.state_dir() if self.remote else Path(text).resolve()

    @property
    def uri(self) -> str:
        """The data root as a user names it: the local path, or ``s3://bucket/prefix``."""
        return self.remote.uri if self.remote else str(self.root)

    # paths
    def partition_path(self, ref: PartitionRef, kind: str = "tiers") -> Path:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if self.remote:
            raise ValueError(f"{self.uri} is object storage: a partition has no local path (see partition_uri)")
        return self.root / kind / ref.tier / f"domain={ref.domain}" / f"batch={ref.batch}" / "part.parquet"

    def partition_uri(self, ref: PartitionRef, kind: str = "tiers") -> str:
        """Where the partition's committed file is: a local path, or the object a commit marker names."""
        if not self.remote:
            return str(self.partition_path(ref, kind))
        marker = self._marker(ref, kind)
        name = marker.file if marker else objects.MARKER_NAME
        return f"s3://{self._pkey(ref, kind)}/{name}"

    def _pkey(self, ref: PartitionRef, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        assert self.remote is not None
        return objects.partition_key(self.remote, kind, ref.tier, ref.domain, ref.batch)

    def _marker(self, ref: PartitionRef, kind: str) -> objects.Marker | None:
        assert self.remote is not None
        return objects.read_marker(self.remote, self._pkey(ref, kind))

    def committed_files(self, tier: str, kind: str = "tiers") -> list[str]:
        """Object storage: the committed files of every partition of ``tier`` (``bucket/key``, for pyarrow)."""
        assert self.remote is not None
        return [f"{objects.partition_key(self.remote, kind, m.tier, m.domain, m.batch)}/{m.file}"
                for m in objects.committed(self.remote, kind, tier)]

    def glob(self, tier: str, kind: str = "tiers") -> str:
        return str(self.root / kind / tier / "domain=*" / "batch=*" / "part.parquet")

    @property
    def catalog_path(self) -> Path:
        """``catalog.duckdb``; for object storage ``catalog.sql`` in the state directory (see ``catalog``)."""
        return self.root / ("catalog.sql" if self.remote else "catalog.duckdb")

    # writes
    def writer(self, ref: PartitionRef, kind: str = "tiers", chunk_rows: int = 2000) -> AtomicParquetWriter:
        schema = RECORD_SCHEMA if kind == "tiers" else REJECTED_SCHEMA
        if self.remote:
            self.remote.check()  # refused credentials or a missing bucket fail before any work
            spool = self.root / "spool" / kind / ref.tier / f"domain={ref.domain}" / f"batch={ref.batch}" / "part.parquet"
            return ObjectParquetWriter(self.remote, self._pkey(ref, kind), (ref.tier, ref.domain, ref.batch, kind),
                                       spool, schema, chunk_rows)
        return AtomicParquetWriter(self.partition_path(ref, kind), schema, chunk_rows)

    def write(self, ref: PartitionRef, rows: Iterable[dict[str, Any]], kind: str = "tiers") -> int:
        w = self.writer(ref, kind)
        try:
            for row in rows:
                w.write(row)
            w.commit()
        except BaseException:
            w.abort()
            raise
        return w.rows

    def write_table(self, ref: PartitionRef, table: pa.Table, kind: str = "tiers") -> int:
        w = self.writer(ref, kind)
        try:
            w.write_table(table)
            w.commit()
        except BaseException:
            w.abort()
            raise
        return w.rows

    # reads
    def exists(self, ref: PartitionRef, kind: str = "tiers") -> bool:
        if self.remote:
            return self._marker(ref, kind) is not None
        return self.partition_path(ref, kind).exists()

    def read(self, ref: PartitionRef, kind: str = "tiers", columns: list[str] | None = None) -> pa.Table:
        """The partition's table; an empty table of the schema when it was never written."""
        if self.remote:
            marker = self._marker(ref, kind)
            if marker is not None:
                data = objects.read_bytes(self.remote, self._pkey(ref, kind), marker)
                return pq.read_table(pa.BufferReader(data), columns=columns)
        elif (path := self.partition_path(ref, kind)).exists():
            return pq.read_table(path, columns=columns)
        schema = RECORD_SCHEMA if kind == "tiers" else REJECTED_SCHEMA
        table = schema.empty_table()
        return table.select(columns) if columns else table

    def read_docs(self, ref: PartitionRef, kind: str = "tiers") -> list[dict[str, Any]]:
        """The partition's records as dicts, JSON columns (signals, models, meta) parsed."""
        docs = self.read(ref, kind).to_pylist()
        for doc in docs:
            for name in JSON_COLUMNS:
                doc[name] = loads(doc[name]) if doc.get(name) is not None else None
        return docs

    def iter_batches(self, ref: PartitionRef, kind: str = "tiers", batch_rows: int = 2000) -> Iterator[pa.RecordBatch]:
        if self.remote:
            marker = self._marker(ref, kind)
            if marker is not None:
                key = f"{self._pkey(ref, kind)}/{marker.file}"
                with self.remote.errors(f"reading {key}"), self.remote.filesystem.open_input_file(key) as f:
                    yield from pq.ParquetFile(f).iter_batches(batch_size=batch_rows)
            return
        path = self.partition_path(ref, kind)
        if not path.exists():
            return
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)

    def count(self, ref: PartitionRef, kind: str = "tiers") -> int:
        if self.remote:
            marker = self._marker(ref, kind)
            return marker.rows if marker else 0
        path = self.partition_path(ref, kind)
        return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0

    def partitions(self, tier: str, kind: str = "tiers") -> list[PartitionRef]:
        """Every written partition of ``tier``, sorted by (domain, batch)."""
        if self.remote:
            return sorted((PartitionRef(tier, m.domain, m.batch) for m in objects.committed(self.remote, kind, tier)),
                          key=lambda r: (r.domain, r.batch))
        base = self.root / kind / tier
        refs = []
        for path in sorted(base.glob("domain=*/batch=*/part.parquet")):
            domain = path.parent.parent.name.split("=", 1)[1]
            batch = path.parent.name.split("=", 1)[1]
            refs.append(PartitionRef(tier, domain, batch))
        return refs

    def tiers_present(self) -> list[str]:
        return [t for t in TIERS if self.partitions(t)]
