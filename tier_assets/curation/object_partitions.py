"""Publishing a partition on object storage atomically: a data object, then a commit marker that names it.

S3 has no rename, so a partition directory holds content-addressed data objects
``part-{sha256[:32]}.parquet`` and one marker ``_committed.json``::

    {"batch": "b", "bytes": 5120, "domain": "en", "file": "part-3f1c....parquet", "format":
     "tier_assets.partition/1", "kind": "tiers", "rows": 42, "sha256": "3f1c...", "tier": "L1"}

A writer uploads the data object first, then PUTs the marker; both PUTs are atomic on S3 (a reader sees
the old object or the new one). Readers trust only the marker: a data object no marker names (a writer
that died after its upload) is invisible, and a crashed writer leaves the last committed partition.
Identical output has the same name and the same marker, so a re-run is idempotent. After its marker,
a writer removes data objects that neither its marker nor the marker it replaced names and that are
older than ``GRACE_S`` (a concurrent writer's upload waiting for its marker is younger); the replaced
generation stays, so a reader that has just read the old marker still finds its file.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.fs as pafs

from tier_assets.curation.objectstore import ObjectRoot, ObjectStoreError

MARKER_NAME = "_committed.json"
MARKER_FORMAT = "tier_assets.partition/1"
DATA_PREFIX = "part-"
GRACE_S = 3600
_CHUNK = 1 << 20
_READERS = 16  # markers read at once when listing a tier


@dataclass(frozen=True)
class Marker:
    """What a commit marker says: the committed file (relative to the partition), its rows, bytes, sha256."""

    tier: str
    domain: str
    batch: str
    kind: str
    file: str
    rows: int
    bytes: int
    sha256: str

    def to_bytes(self) -> bytes:
        return json.dumps({"format": MARKER_FORMAT, **asdict(self)}, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Marker:
        try:
            obj = json.loads(data)
            if obj.pop("format") != MARKER_FORMAT:
                raise ValueError("unknown format")
            return cls(**obj)
        except (ValueError, TypeError, KeyError) as exc:
            raise ObjectStoreError(f"commit marker {where} is unreadable ({exc}); "
                                   "it was not written by this version of tier_assets") from exc


def partition_key(root: ObjectRoot, kind: str, tier: str, domain: str, batch: str) -> str:
    return root.key(kind, tier, f"domain={domain}", f"batch={batch}")


def read_marker(root: ObjectRoot, pkey: str) -> Marker | None:
    fs = root.filesystem
    key = f"{pkey}/{MARKER_NAME}"
    with root.errors(f"reading {key}"):
        try:
            with fs.open_input_stream(key) as f:
                data = f.read()
        except FileNotFoundError:
            return None
    return Marker.from_bytes(data, f"s3://{key}")


def committed(root: ObjectRoot, kind: str, tier: str) -> list[Marker]:
    """The markers of every committed partition of ``tier`` (one LIST, then the markers read in parallel)."""
    fs = root.filesystem
    with root.errors(f"listing {root.key(kind, tier)}"):
        infos = fs.get_file_info(pafs.FileSelector(root.key(kind, tier), recursive=True, allow_not_found=True))
    pkeys = sorted(i.path.rsplit("/", 1)[0] for i in infos if i.base_name == MARKER_NAME)
    with ThreadPoolExecutor(_READERS) as pool:
        markers = list(pool.map(lambda k: read_marker(root, k), pkeys))
    return [m for m in markers if m is not None]


def read_bytes(root: ObjectRoot, pkey: str, marker: Marker) -> bytes:
    """The committed file, checked against the marker's size and sha256."""
    key = f"{pkey}/{marker.file}"
    with root.errors(f"reading {key}"), root.filesystem.open_input_stream(key) as f:
        data = f.read()
    if len(data) != marker.bytes or hashlib.sha256(data).hexdigest() != marker.sha256:
        raise ObjectStoreError(f"s3://{key} does not match its commit marker (size or sha256): "
                               "the object was changed outside tier_assets; re-run the partition")
    return data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _upload(root: ObjectRoot, local: Path, key: str) -> None:
    with root.errors(f"uploading {key}"), root.filesystem.open_output_stream(key) as out, open(local, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            out.write(chunk)


def upload_data(root: ObjectRoot, pkey: str, local: Path) -> tuple[str, str, int]:
    """Upload a finished local file as the partition's content-addressed data object: (name, sha256, bytes).

    Not visible to readers until :func:`commit` writes a marker naming it.
    """
    sha = _sha256(local)
    size = local.stat().st_size
    name = f"{DATA_PREFIX}{sha[:32]}.parquet"
    key = f"{pkey}/{name}"
    with root.errors(f"checking {key}"):
        info = root.filesystem.get_file_info(key)
    if info.type != pafs.FileType.File or info.size != size:
        _upload(root, local, key)
    return name, sha, size


@dataclass(frozen=True)
class Staged:
    """An uploaded data object waiting for its marker, and the marker it will replace."""

    pkey: str
    marker: Marker
    previous: Marker | None


def stage(root: ObjectRoot, pkey: str, local: Path, rows: int, ids: tuple[str, str, str, str]) -> Staged:
    """Upload ``local`` (a finished Parquet file of ``rows`` rows) for the partition at ``pkey``; no marker yet.

    ``ids``: (tier, domain, batch, kind), recorded in the marker.
    """
    previous = read_marker(root, pkey)
    name, sha, size = upload_data(root, pkey, local)
    return Staged(pkey, Marker(*ids, file=name, rows=rows, bytes=size, sha256=sha), previous)


def publish_markers(root: ObjectRoot, staged: list[Staged]) -> None:
    """PUT the markers of staged uploads back to back, then sweep each partition.

    Uploading every file before the first marker keeps the time between the markers of a partition's
    kept and rejected files to one small PUT; there is no rename to make the two markers one step.
    """
    for s in staged:
        key = f"{s.pkey}/{MARKER_NAME}"
        with root.errors(f"writing {key}"), root.filesystem.open_output_stream(key) as out:
            out.write(s.marker.to_bytes())
    for s in staged:
        _sweep(root, s.pkey, f"{s.pkey}/{MARKER_NAME}", {s.marker.file} | ({s.previous.file} if s.previous else set()))


def _sweep(root: ObjectRoot, pkey: str, marker_key: str, keep: set[str]) -> None:
    """Remove superseded data objects older than ``GRACE_S`` by the store's own clock (the marker's mtime)."""
    fs = root.filesystem
    with root.errors(f"cleaning {pkey}"):
        now = fs.get_file_info(marker_key).mtime
        for info in fs.get_file_info(pafs.FileSelector(pkey)):
            stale = now is not None and info.mtime is not None and (now - info.mtime).total_seconds() > GRACE_S
            if info.base_name.startswith(DATA_PREFIX) and info.base_name not in keep and stale:
                fs.delete_file(info.path)
