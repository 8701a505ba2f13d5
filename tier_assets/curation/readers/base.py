"""What every L0 reader yields: an extracted document or a quarantined record.

Readers stream: they yield one item per source record and never hold a whole
file in memory. A record that cannot become a document is yielded as
``Quarantined`` with a short reason code, so the run goes on and nothing is lost;
a file that cannot be opened at all raises ``SourceFileError`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SourceFileError(RuntimeError):
    """A source file that cannot be opened or read at all (the run fails, naming it)."""

    def __init__(self, path: str | Path, why: str):
        super().__init__(f"cannot read source file {path}: {why}")
        self.path = str(path)


@dataclass(frozen=True)
class ReaderConfig:
    """Limits shared by all readers (overridable per run)."""

    max_record_bytes: int = 10_000_000  # records over this are quarantined as over_size_cap
    max_code_file_bytes: int = 1_000_000
    min_html_chars: int = 1  # extracted main text shorter than this is quarantined as empty_extraction


@dataclass(slots=True)
class Extracted:
    """A document a reader got out of a source record (text not yet validated)."""

    text: str
    record_index: int
    byte_offset: int | None = None
    source_doc_id: str | None = None
    url: str | None = None
    title: str | None = None
    warc_record_id: str | None = None
    crawl_date: str | None = None
    lang: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Quarantined:
    """A source record that could not become a document, with the reason why."""

    record_index: int
    reason: str  # short code: malformed_json, invalid_utf8, truncated_gzip, non_html_payload, ...
    detail: str = ""
    preview: str = ""  # what could be decoded (with replacement chars), capped
    byte_offset: int | None = None
    url: str | None = None
    warc_record_id: str | None = None
    source_doc_id: str | None = None


ReadItem = Extracted | Quarantined
Reader = Callable[[Path, ReaderConfig], Iterator[ReadItem]]

PREVIEW_CHARS = 2000


def preview(data: bytes | str, limit: int = PREVIEW_CHARS) -> str:
    """A printable, capped preview of raw bytes or text for the rejected set."""
    if isinstance(data, bytes):
        data = data[: limit * 4].decode("utf-8", errors="replace")
    return data[:limit]
