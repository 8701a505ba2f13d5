"""Tier storage: one Parquet file per tier, partition and kind under a data root.

Layout (hive style, so DuckDB and Polars read it with partition columns)::

    {root}/tiers/{tier}/domain={d}/batch={b}/part.parquet      kept records
    {root}/rejected/{tier}/domain={d}/batch={b}/part.parquet   rejected, with stage + reason
    {root}/catalog.duckdb                                      one view per tier and rejected set

Writes go to a temporary file in the same directory and are renamed into place,
so a crashed run leaves the last good partition and a re-run is idempotent. A partition's
kept and rejected files are published together (``write_partition``, ``commit_pair``): both
temps are finished, a redo journal ``{root}/journal/{tier}/domain={d}/batch={b}.json`` naming
the two renames is written and fsynced, the renames follow and the journal is removed. A writer
killed after its journal leaves the journal; the next access to the partition through the store
(or ``recover``, run when the catalog is built) finishes its renames, so readers never see a new
kept file beside an old rejected one. Commits and recoveries of a partition hold an ``flock`` on
``batch={b}.lock`` beside the journal. Publishing a partition file also removes temps of that
file left by dead writers on this host (``atomic.remove_orphan_temps``).

A data root ``s3://bucket/prefix`` keeps the tiers in the bucket, each partition published by a commit
marker (``object_partitions``), and everything else in a local state directory (``objectstore``):
``root`` is then that directory and ``uri`` the bucket's URI. There a pair is two markers PUT back to back
after both uploads (``commit_pair``), not a journaled commit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tier_assets.curation import object_partitions as objects
from tier_assets.curation.atomic import (
    apply_journal,
    locked,
    publish,
    remove_orphan_temps,
    temp_sibling,
    write_journal,
)
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
        self.journaled = False  # a journal names the temp: only its roll-forward may touch it

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

    def finish(self) -> Path:
        """Flush and close the temp file; return it, whole and ready to publish."""
        self.flush()
        self._writer.close()
        return self.tmp

    def commit(self) -> None:
        publish(self.finish(), self.path)
        remove_orphan_temps(self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            if not self.journaled:
                self.tmp.unlink(missing_ok=True)


class PartitionParquetWriter(AtomicParquetWriter):
    """A local partition file: ``commit`` goes through its store (partition lock, recovery, clean-up)."""

    def __init__(self, store: TierStore, ref: PartitionRef, kind: str, schema: pa.Schema, chunk_rows: int = 2000):
        super().__init__(store.partition_path(ref, kind), schema, chunk_rows)
        self.store, self.ref = store, ref

    def commit(self) -> None:
        self.store.commit_files(self.ref, [self])


class ObjectParquetWriter(AtomicParquetWriter):
    """Spools the partition into a local temp file; ``commit`` uploads it and writes its commit marker."""

    def __init__(self, remote: ObjectRoot, pkey: str, ids: tuple[str, str, str, str], spool: Path,
                 schema: pa.Schema, chunk_rows: int = 2000):
        super().__init__(spool, schema, chunk_rows)
        self.remote, self.pkey, self.ids = remote, pkey, ids

    def stage(self) -> objects.Staged:
        """Upload the finished file; invisible until ``objects.publish_markers`` PUTs its marker."""
        self.finish()
        try:
            return objects.stage(self.remote, self.pkey, self.tmp, self.rows, self.ids)
        finally:
            self.tmp.unlink(missing_ok=True)
            remove_orphan_temps(self.path)  # spools of killed writers of this partition

    def commit(self) -> None:
        objects.publish_markers(self.remote, [self.stage()])


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
            self.recover_partition(ref)
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

    def journal_path(self, ref: PartitionRef) -> Path:
        """The redo journal of a pair commit of ``ref`` in progress (absent between commits)."""
        return self.root / "journal" / ref.tier / f"domain={ref.domain}" / f"batch={ref.batch}.json"

    def _lock_path(self, ref: PartitionRef) -> Path:
        return self.journal_path(ref).with_suffix(".lock")

    # pair commits and their recovery (local roots; object storage publishes each file by its marker)
    def recover_partition(self, ref: PartitionRef) -> bool:
        """Finish the commit of ``ref`` a killed writer left after its journal; True when there was one.

        One stat when there is nothing to do, so every access can afford it.
        """
        if self.remote or not self.journal_path(ref).exists():
            return False
        with locked(self._lock_path(ref)):
            if not self.journal_path(ref).exists():  # its writer or another reader finished it
                return False
            apply_journal(self.journal_path(ref), self.root)
            return True

    def recover(self, tier: str | None = None) -> int:
        """Roll forward every journal left under the root (of ``tier``); the number recovered.

        Run before a catalog is built: DuckDB reads the partition files by glob, not through the store.
        """
        if self.remote:
            return 0
        recovered = 0
        for journal in sorted((self.root / "journal").glob(f"{tier or '*'}/domain=*/batch=*.json")):
            domain = journal.parent.name.split("=", 1)[1]
            batch = journal.name[len("batch="):-len(".json")]
            recovered += self.recover_partition(PartitionRef(journal.parent.parent.name, domain, batch))
        return recovered

    def commit_files(self, ref: PartitionRef, writers: Sequence[AtomicParquetWriter]) -> None:
        """Publish the finished writers' files of ``ref`` together; a journal makes two or more all-or-nothing.

        Under the partition lock: an earlier killed commit is finished first, then the renames (journaled
        when there are several), then temps of these files left by dead writers on this host go (no
        journal names them now: the only journal of this partition was just applied).
        """
        for w in writers:
            w.finish()
        with locked(self._lock_path(ref)):
            journal = self.journal_path(ref)
            if journal.exists():
                apply_journal(journal, self.root)
            if len(writers) == 1:
                publish(writers[0].tmp, writers[0].path)
            else:
                write_journal(journal, [(w.tmp, w.path) for w in writers], self.root)
                for w in writers:
                    w.journaled = True
                apply_journal(journal, self.root)
            for w in writers:
                remove_orphan_temps(w.path)

    def commit_pair(self, kept: AtomicParquetWriter, rejected: AtomicParquetWriter) -> None:
        """Publish a partition's kept and rejected writers (from ``writer``) together.

        Object storage has no rename to journal: both files are uploaded, then their two markers are PUT
        back to back (kept first), so a writer killed between those two requests leaves a new kept marker
        beside the old rejected one until the partition is written again.
        """
        if isinstance(kept, ObjectParquetWriter) and isinstance(rejected, ObjectParquetWriter):
            assert self.remote is not None
            objects.publish_markers(self.remote, [kept.stage(), rejected.stage()])
            return
        if not (isinstance(kept, PartitionParquetWriter) and isinstance(rejected, PartitionParquetWriter)):
            raise TypeError("commit_pair takes two writers from TierStore.writer")
        if kept.ref != rejected.ref:
            raise ValueError(f"a pair is one partition's files, got {kept.ref} and {rejected.ref}")
        self.commit_files(kept.ref, [kept, rejected])

    @property
    def catalog_path(self) -> Path:
        """``catalog.duckdb``; for object storage ``catalog.sql`` in the state directory (see ``catalog``)."""
        return self.root / ("catalog.sql" if self.remote else "catalog.duckdb")

    # writes
    def writer(self, ref: PartitionRef, kind: str = "tiers", chunk_rows: int = 2000) -> AtomicParquetWriter:
        """A streaming writer of one partition file; ``commit`` it alone or two with ``commit_pair``."""
        schema = RECORD_SCHEMA if kind == "tiers" else REJECTED_SCHEMA
        if self.remote:
            self.remote.check()  # refused credentials or a missing bucket fail before any work
            spool = self.root / "spool" / kind / ref.tier / f"domain={ref.domain}" / f"batch={ref.batch}" / "part.parquet"
            return ObjectParquetWriter(self.remote, self._pkey(ref, kind), (ref.tier, ref.domain, ref.batch, kind),
                                       spool, schema, chunk_rows)
        self.recover_partition(ref)
        return PartitionParquetWriter(self, ref, kind, schema, chunk_rows)

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

    def write_partition(self, ref: PartitionRef, kept_rows: Iterable[dict[str, Any]],
                        rejected_rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Write a partition's kept and rejected records and publish both together: (kept, rejected) rows."""
        kept_w = self.writer(ref, "tiers")
        rejected_w = self.writer(ref, "rejected")
        try:
            for row in kept_rows:
                kept_w.write(row)
            for row in rejected_rows:
                rejected_w.write(row)
            self.commit_pair(kept_w, rejected_w)
        except BaseException:
            kept_w.abort()
            rejected_w.abort()
            raise
        return kept_w.rows, rejected_w.rows

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
        self.recover_partition(ref)
        return self.partition_path(ref, kind).exists()

    def read(self, ref: PartitionRef, kind: str = "tiers", columns: list[str] | None = None) -> pa.Table:
        """The partition's table; an empty table of the schema when it was never written."""
        if self.remote:
            marker = self._marker(ref, kind)
            if marker is not None:
                data = objects.read_bytes(self.remote, self._pkey(ref, kind), marker)
                return pq.read_table(pa.BufferReader(data), columns=columns)
        elif self.exists(ref, kind):
            return pq.read_table(self.partition_path(ref, kind), columns=columns)
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
        self.recover_partition(ref)
        path = self.partition_path(ref, kind)
        if not path.exists():
            return
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)

    def count(self, ref: PartitionRef, kind: str = "tiers") -> int:
        if self.remote:
            marker = self._marker(ref, kind)
            return marker.rows if marker else 0
        self.recover_partition(ref)
        path = self.partition_path(ref, kind)
        return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0

    def partitions(self, tier: str, kind: str = "tiers") -> list[PartitionRef]:
        """Every written partition of ``tier``, sorted by (domain, batch)."""
        if self.remote:
            return sorted((PartitionRef(tier, m.domain, m.batch) for m in objects.committed(self.remote, kind, tier)),
                          key=lambda r: (r.domain, r.batch))
        self.recover(tier)
        base = self.root / kind / tier
        refs = []
        for path in sorted(base.glob("domain=*/batch=*/part.parquet")):
            domain = path.parent.parent.name.split("=", 1)[1]
            batch = path.parent.name.split("=", 1)[1]
            refs.append(PartitionRef(tier, domain, batch))
        return refs

    def tiers_present(self) -> list[str]:
        return [t for t in TIERS if self.partitions(t)]
