"""L0 raw tier: stream every source record of a partition into kept or quarantined.

Readers extract; this module validates what they extracted (empty text, invalid
Unicode, binary content, size cap), gives each record a stable ``doc_id`` and
provenance, and streams both sets to Parquet in chunks, so memory does not grow
with the input.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tier_assets.curation.readers import Extracted, Quarantined, ReaderConfig, get_reader
from tier_assets.curation.schema import dumps, stable_id
from tier_assets.curation.sources import SourceEntry
from tier_assets.curation.storage import PartitionRef, TierStore

STAGE = "l0_read"
_CONTROL = {chr(c) for c in range(32) if chr(c) not in "\t\n\r"} | {chr(0x7F)}


@dataclass
class IngestStats:
    read: int = 0
    kept: int = 0
    quarantined: int = 0
    bytes_kept: int = 0
    reasons: Counter = field(default_factory=Counter)
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read, "kept": self.kept, "quarantined": self.quarantined,
            "bytes_kept": self.bytes_kept, "reasons": dict(self.reasons),
            "per_source": self.per_source, "seconds": round(self.seconds, 3),
        }


def validate_text(text: str, config: ReaderConfig) -> tuple[str, str] | None:
    """Why ``text`` cannot be an L0 document, or None when it can."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return "invalid_utf8", f"unpaired surrogate at {exc.start}"
    if not text.strip():
        return "empty_text", "empty or whitespace-only text"
    if size > config.max_record_bytes:
        return "over_size_cap", f"{size} bytes > cap {config.max_record_bytes}"
    head = text[:4096]
    if "\x00" in head:
        return "binary_content", "NUL bytes in text"
    controls = sum(1 for ch in head if ch in _CONTROL)
    if controls > 0.05 * len(head):
        return "binary_content", f"{controls} control characters in the first {len(head)}"
    return None


def iter_source_files(entry: SourceEntry) -> Iterator[tuple[Path, str]]:
    """(file, relpath) pairs of an entry: one file, or every file of a code tree."""
    if entry.format == "code" and Path(entry.path).is_dir():
        from tier_assets.curation.readers.code import iter_code_tree

        root = Path(entry.path)
        for f in iter_code_tree(root, list(entry.include)):
            yield f, f"{entry.relpath}/{f.relative_to(root).as_posix()}"
    else:
        yield Path(entry.path), entry.relpath or Path(entry.path).name


def _base(ref: PartitionRef, entry: SourceEntry, relpath: str, index: int) -> dict[str, Any]:
    return {
        "doc_id": stable_id("L0", ref.domain, ref.batch, relpath, index),
        "parent_ids": [], "tier": "L0", "domain": ref.domain, "batch": ref.batch,
        "source": entry.source, "source_file": relpath, "record_index": index,
    }


def to_row(ref: PartitionRef, entry: SourceEntry, relpath: str, item: Extracted) -> dict[str, Any]:
    row = _base(ref, entry, relpath, item.record_index)
    row.update(
        text=item.text, title=item.title, byte_offset=item.byte_offset, source_doc_id=item.source_doc_id,
        warc_record_id=item.warc_record_id, url=item.url, crawl_date=item.crawl_date, lang=item.lang,
        n_chars=len(item.text), meta=dumps(item.meta) if item.meta else None, signals=None, models=None,
    )
    return row


def quarantine_row(ref: PartitionRef, entry: SourceEntry, relpath: str, item: Quarantined) -> dict[str, Any]:
    row = _base(ref, entry, relpath, item.record_index)
    row.update(
        text=item.preview, byte_offset=item.byte_offset, url=item.url, warc_record_id=item.warc_record_id,
        source_doc_id=item.source_doc_id, n_chars=len(item.preview),
        stage=STAGE, reason=item.reason, detail=item.detail,
    )
    return row


Progress = Callable[[IngestStats, str], None]


def ingest_partition(
    store: TierStore,
    ref: PartitionRef,
    entries: list[SourceEntry],
    config: ReaderConfig | None = None,
    progress: Progress | None = None,
    progress_every: int = 5000,
) -> IngestStats:
    """Read every entry into L0 ``ref``: kept records and quarantined ones, published together atomically."""
    config = config or ReaderConfig()
    stats = IngestStats()
    start = time.perf_counter()
    kept_w = store.writer(ref, "tiers")
    rej_w = store.writer(ref, "rejected")
    try:
        for entry in entries:
            for path, relpath in iter_source_files(entry):
                src = stats.per_source.setdefault(relpath, {"read": 0, "kept": 0, "quarantined": 0})
                for item in get_reader(entry.format)(path, config):
                    stats.read += 1
                    src["read"] += 1
                    if isinstance(item, Extracted):
                        verdict = validate_text(item.text, config)
                        if verdict is None:
                            row = to_row(ref, entry, relpath, item)
                            kept_w.write(row)
                            stats.kept += 1
                            src["kept"] += 1
                            stats.bytes_kept += len(item.text.encode("utf-8"))
                        else:
                            item = Quarantined(
                                item.record_index, verdict[0], verdict[1],
                                item.text[:2000].encode("utf-8", "replace").decode("utf-8"),
                                item.byte_offset, item.url, item.warc_record_id, item.source_doc_id,
                            )
                    if isinstance(item, Quarantined):
                        rej_w.write(quarantine_row(ref, entry, relpath, item))
                        stats.quarantined += 1
                        src["quarantined"] += 1
                        stats.reasons[item.reason] += 1
                    if progress and stats.read % progress_every == 0:
                        stats.seconds = time.perf_counter() - start
                        progress(stats, relpath)
        store.commit_pair(kept_w, rej_w)
    except BaseException:
        kept_w.abort()
        rej_w.abort()
        raise
    stats.seconds = time.perf_counter() - start
    return stats


def accounting_problems(store: TierStore, ref: PartitionRef, expected_read: int | None = None) -> list[str]:
    """Independent proof from the written files that nothing was lost.

    Every source file's record indexes across kept + quarantined must be distinct
    (no record written twice) and, when the reader's count is known, kept +
    quarantined must equal it.
    """
    problems = []
    kept = store.read(ref, "tiers", columns=["doc_id", "source_file", "record_index"])
    rej = store.read(ref, "rejected", columns=["doc_id", "source_file", "record_index"])
    total = kept.num_rows + rej.num_rows
    if expected_read is not None and total != expected_read:
        problems.append(f"kept {kept.num_rows} + quarantined {rej.num_rows} = {total} != read {expected_read}")
    all_ids = kept["doc_id"].to_pylist() + rej["doc_id"].to_pylist()
    if len(set(all_ids)) != len(all_ids):
        problems.append(f"{len(all_ids) - len(set(all_ids))} duplicate doc_ids across kept and quarantined")
    return problems
