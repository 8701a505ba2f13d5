"""Shards written to a temp file and renamed into place, and the manifest of what an export delivered.

md5 order, JSON, zstd and Parquet are all deterministic, so the same data, spec
and seed give byte-identical shards (and the same sha256 in the manifest).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from tier_assets.curation.atomic import publish, temp_sibling
from tier_assets.curation.exports.select import Cell
from tier_assets.curation.exports.spec import OUTPUT_FORMATS, StageSpec
from tier_assets.curation.schema import TIERS, loads
from tier_assets.curation.storage import TierStore

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
ZSTD_LEVEL = 10
PARQUET_ROW_GROUP = 1000

PARQUET_SCHEMAS = {
    "text": pa.schema(
        [("text", pa.string()), ("doc_id", pa.string()), ("tier", pa.string()), ("domain", pa.string())]
    ),
    "chat": pa.schema(
        [
            ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("doc_id", pa.string()),
            ("tier", pa.string()),
            ("domain", pa.string()),
        ]
    ),
    "item": pa.schema(
        [
            ("doc_id", pa.string()),
            ("tier", pa.string()),
            ("domain", pa.string()),
            ("text", pa.string()),
            ("parent_ids", pa.list_(pa.string())),
            ("item", pa.string()),  # the tier's signals (evidence pointers, kind, ...) as JSON
        ]
    ),
}


@dataclass(frozen=True)
class ShardInfo:
    path: str  # file name, relative to the manifest's directory
    docs: int
    tokens: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    """What an export delivered against what its spec asked for; written as ``manifest.json``."""

    stage: str
    path: Path
    data_root: str
    spec: dict[str, Any]
    token_budget: int | None
    requested_tokens: int
    delivered_tokens: int
    delivered_docs: int
    short: bool
    shortfalls: list[str]
    tiers: dict[str, dict[str, Any]]
    domains: dict[str, dict[str, Any]]
    cells: list[dict[str, Any]]
    shards: list[ShardInfo]
    versions: dict[str, list[str]]
    skipped: dict[str, int]  # selected records that could not be formatted, by reason
    selection_sha256: str
    index: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return {"manifest_version": MANIFEST_VERSION, **out}


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shard_name(spec: StageSpec, index: int) -> str:
    return f"{spec.name}-{index:05d}.{spec.output_format}"


def remove_stale_shards(out: Path, spec: StageSpec, shards: list[ShardInfo]) -> None:
    """Remove shards of an earlier export of the stage that this one did not write (the directory matches its
    manifest)."""
    written = {s.path for s in shards}
    for ext in OUTPUT_FORMATS:
        for old in out.glob(f"{spec.name}-[0-9][0-9][0-9][0-9][0-9].{ext}"):
            if old.name not in written:
                old.unlink()


class ShardWriter:
    """One shard: a temp file in the output directory, renamed into place by ``close``."""

    def __init__(self, out_dir: Path, name: str, spec: StageSpec):
        self.name = name
        self.path = out_dir / name
        self.tmp = temp_sibling(self.path)
        self.docs = 0
        self.tokens = 0
        self._parquet = spec.output_format == "parquet"
        self._schema = PARQUET_SCHEMAS[spec.record_format]
        self._rows: list[dict[str, Any]] = []
        if self._parquet:
            self._pq = pq.ParquetWriter(self.tmp, self._schema, compression="zstd")
        else:
            self._file: BinaryIO = open(self.tmp, "wb")  # noqa: SIM115 - closed in close/abort
            self._zst = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(self._file, closefd=False)

    def write(self, record: dict[str, Any], tokens: int) -> None:
        self.docs += 1
        self.tokens += tokens
        if self._parquet:
            self._rows.append(record)
            if len(self._rows) >= PARQUET_ROW_GROUP:
                self._flush()
        else:
            self._zst.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")

    def _flush(self) -> None:
        if self._rows:
            self._pq.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> ShardInfo:
        if self._parquet:
            self._flush()
            self._pq.close()
        else:
            self._zst.close()
            self._file.close()
        publish(self.tmp, self.path)
        return ShardInfo(self.name, self.docs, self.tokens, self.path.stat().st_size, file_sha256(self.path))

    def abort(self) -> None:
        try:
            if self._parquet:
                self._pq.close()
            else:
                self._zst.close()
                self._file.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    """``{"l2": {"classifier_version": "v1"}}`` -> ``("l2.classifier_version", "v1")``; list items become values."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}" if prefix else str(k), v)
    elif isinstance(value, list):
        for v in value:
            yield from _flatten(prefix, v)
    elif value is not None:
        yield prefix, str(value)


@dataclass
class Tally:
    """What the stream delivered: per-cell counts, model versions seen, skips by reason, selection hash."""

    cells: dict[Cell, dict[str, int]] = field(default_factory=dict)
    versions: dict[str, set[str]] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    selection: Any = field(default_factory=hashlib.sha256)
    _seen_models: set[str] = field(default_factory=set)

    def add(self, row: dict[str, Any]) -> None:
        self.selection.update(f"{row['tier']}/{row['doc_id']}/{row['epoch']}\n".encode())
        cell = self.cells.setdefault((row["tier"], row["domain"]), {"docs": 0, "tokens": 0, "repeats": 0})
        cell["docs"] += 1
        cell["tokens"] += row["tokens"]
        cell["repeats"] += row["epoch"] > 0
        models = row["models"]
        if models and models not in self._seen_models:  # many records share one models string
            self._seen_models.add(models)
            for key, value in _flatten("", loads(models)):
                self.versions.setdefault(key, set()).add(value)


def build_manifest(
    store: TierStore,
    spec: StageSpec,
    out: Path,
    available: dict[Cell, tuple[int, int]],
    cell_req: dict[Cell, int],
    tier_req: dict[str, int],
    tally: Tally,
    shards: list[ShardInfo],
) -> Manifest:
    """Requested vs delivered per cell, tier and domain, and a sentence for every shortfall."""
    zero = {"docs": 0, "tokens": 0, "repeats": 0}
    cells, shortfalls = [], []
    for tier, domain in sorted(set(cell_req) | set(available), key=lambda k: (TIERS.index(k[0]), k[1])):
        n_avail, tok_avail = available.get((tier, domain), (0, 0))
        got = tally.cells.get((tier, domain), zero)
        requested = cell_req.get((tier, domain), 0)
        reps = spec.repetitions(tier)
        exhausted = tok_avail * reps < requested
        cells.append(
            {
                "tier": tier,
                "domain": domain,
                "requested_tokens": requested,
                "available_docs": n_avail,
                "available_tokens": tok_avail,
                "max_repetitions": reps,
                "delivered_docs": got["docs"],
                "delivered_tokens": got["tokens"],
                "repeated_docs": got["repeats"],
                "short_tokens": max(0, requested - got["tokens"]),
                "exhausted": exhausted,
            }
        )
        if exhausted:
            shortfalls.append(
                f"{tier}/{domain}: requested {requested:,} tokens, delivered {got['tokens']:,} "
                f"(all {tok_avail:,} available tokens x at most {reps} repetition(s))"
            )
    tiers: dict[str, dict[str, Any]] = {}
    for tier in spec.tiers:
        tier_cells = [c for c in cells if c["tier"] == tier]
        got_tokens = sum(c["delivered_tokens"] for c in tier_cells)
        tiers[tier] = {
            "weight": spec.tier_weights[tier],
            "requested_tokens": tier_req[tier],
            "delivered_tokens": got_tokens,
            "delivered_docs": sum(c["delivered_docs"] for c in tier_cells),
            "short_tokens": max(0, tier_req[tier] - got_tokens),
        }
        if not any(c["available_docs"] for c in tier_cells):
            shortfalls.append(
                f"{tier}: requested {tier_req[tier]:,} tokens, but no {tier} record matches the spec"
            )
    domains: dict[str, dict[str, Any]] = {}
    for c in cells:
        d = domains.setdefault(
            c["domain"], {"requested_tokens": 0, "delivered_tokens": 0, "delivered_docs": 0}
        )
        d["requested_tokens"] += c["requested_tokens"]
        d["delivered_tokens"] += c["delivered_tokens"]
        d["delivered_docs"] += c["delivered_docs"]
    skipped = dict(sorted(tally.skipped.items()))
    if skipped:
        why = ", ".join(f"{reason} {n}" for reason, n in skipped.items())
        shortfalls.append(
            f"{sum(skipped.values())} selected record(s) could not be {spec.record_format} records and were "
            f"skipped ({why})"
        )
    index = None
    if spec.index_path is not None:
        index_path = store.root / spec.index_path
        index_manifest = index_path / MANIFEST_NAME
        index = {"path": str(index_path), "exists": index_manifest.exists(),
                 **(json.loads(index_manifest.read_text()) if index_manifest.exists() else {})}
    return Manifest(
        stage=spec.name,
        path=out / MANIFEST_NAME,
        data_root=store.uri,
        spec=asdict(spec),
        token_budget=spec.token_budget,
        requested_tokens=sum(tier_req.values()),
        delivered_tokens=sum(c["delivered_tokens"] for c in cells),
        delivered_docs=sum(c["delivered_docs"] for c in cells),
        short=bool(shortfalls),
        shortfalls=shortfalls,
        tiers=tiers,
        domains=dict(sorted(domains.items())),
        cells=cells,
        shards=shards,
        versions={k: sorted(v) for k, v in sorted(tally.versions.items())},
        skipped=skipped,
        selection_sha256=tally.selection.hexdigest(),
        index=index,
    )
