"""JSONL and JSONL.gz reader (Dolma and RedPajama conventions).

Dolma: ``{"id", "text", "source", "added", "created", "metadata": {...}}``;
RedPajama / Data-Juicer: ``{"text", "meta": {...}}``. The text field is ``text``
(``content`` as a fallback); metadata is ``metadata`` or ``meta``.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tier_assets.curation.readers.base import (
    Extracted,
    Quarantined,
    ReaderConfig,
    ReadItem,
    SourceFileError,
    preview,
)

_URL_KEYS = ("warc_url", "url", "source_url", "warc_target_uri", "WARC-Target-URI")
_DATE_KEYS = ("warc_date", "crawl_date", "date", "timestamp", "created")
_RECORD_ID_KEYS = ("warc_record_id", "WARC-Record-ID", "warc_filename")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # only a \uD800-\uDFFF escape can put a surrogate in a str
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def gzip_damage(exc: Exception) -> tuple[str, str]:
    """Reason and detail for a gzip stream that stops decoding: cut short, or corrupt (bad data or checksum)."""
    reason = "truncated_gzip" if isinstance(exc, EOFError) else "corrupt_gzip"
    return reason, f"{type(exc).__name__}: {exc}; the rest of the file is unreadable"


def open_maybe_gzip(path: Path) -> IO[bytes]:
    """Open ``path`` for binary reading, gunzipping ``.gz`` files (by magic, not name)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - returned to the caller
    except OSError as exc:
        raise SourceFileError(path, exc.strerror or str(exc)) from exc
    magic = fh.read(2)
    fh.seek(0)
    if magic == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return fh


def _first(d: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = d.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _warc_record_id(meta: dict[str, Any]) -> str | None:
    """Dolma keeps the WARC record id (``<urn:uuid:...>``) under one of several keys."""
    value = _first(meta, _RECORD_ID_KEYS)
    return value if value and value.startswith("<urn:") else None


def parse_json_record(obj: dict[str, Any], index: int, offset: int | None) -> ReadItem:
    text = obj.get("text", obj.get("content"))
    if not isinstance(text, str):
        return Quarantined(index, "missing_text", "no string 'text' field", preview(json.dumps(obj)[:2000]), offset)
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else obj.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    extra = {k: v for k, v in obj.items() if k not in ("text", "content", "metadata", "meta", "id")}
    return Extracted(
        text=text,
        record_index=index,
        byte_offset=offset,
        source_doc_id=str(obj["id"]) if obj.get("id") is not None else None,
        url=_first(meta, _URL_KEYS) or _first(obj, _URL_KEYS),
        title=_first(meta, ("title",)),
        crawl_date=_first(meta, _DATE_KEYS) or _first(obj, _DATE_KEYS),
        warc_record_id=_warc_record_id(meta),
        lang=_first(meta, ("language", "lang")),
        meta={**extra, **meta},
    )


def _lone_surrogate(line: bytes, obj: dict[str, Any]) -> str | None:
    """Where a parsed line holds a lone surrogate (``"\\ud800"``), which no UTF-8 file can store, or None."""
    if not _SURROGATE_ESCAPE.search(line):
        return None
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"lone surrogate escape \\u{ord(exc.object[exc.start]):04x} is no Unicode character"
    return None


def _line_item(line: bytes, index: int, offset: int) -> ReadItem:
    """One non-blank line as a document, or quarantined with why it cannot be one."""
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Quarantined(index, "invalid_utf8", str(exc), preview(line), offset)
    try:
        obj = json.loads(decoded)
    except json.JSONDecodeError as exc:
        return Quarantined(index, "malformed_json", str(exc), preview(decoded), offset)
    except RecursionError:
        return Quarantined(index, "malformed_json", "JSON nested too deeply to parse", preview(decoded), offset)
    if not isinstance(obj, dict):
        return Quarantined(index, "malformed_json", f"line is a JSON {type(obj).__name__}, not an object",
                           preview(decoded), offset)
    surrogate = _lone_surrogate(line, obj)
    if surrogate:
        return Quarantined(index, "invalid_utf8", surrogate, preview(decoded), offset)
    return parse_json_record(obj, index, offset)


def read_jsonl(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield one item per line; bad lines are quarantined and reading goes on."""
    fh = open_maybe_gzip(path)
    index = 0
    offset = 0
    try:
        while True:
            try:
                line = fh.readline(config.max_record_bytes + 1)
            except GZIP_ERRORS as exc:
                yield Quarantined(index, *gzip_damage(exc), "", offset)
                return
            if not line:
                return
            start = offset
            offset += len(line)
            if len(line) > config.max_record_bytes:
                # skip the rest of the oversized line without holding it
                rest = line
                while not rest.endswith(b"\n"):
                    try:
                        rest = fh.readline(1 << 20)
                    except GZIP_ERRORS:
                        break
                    if not rest:
                        break
                    offset += len(rest)
                yield Quarantined(
                    index, "over_size_cap", f"record is over {config.max_record_bytes} bytes", preview(line), start
                )
                index += 1
                continue
            if not line.strip():
                continue  # blank separator lines are not records
            yield _line_item(line, index, start)
            index += 1
    finally:
        fh.close()
