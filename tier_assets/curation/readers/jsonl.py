"""JSONL and JSONL.gz reader (Dolma and RedPajama conventions).

Dolma: ``{"id", "text", "source", "added", "created", "metadata": {...}}``;
RedPajama / Data-Juicer: ``{"text", "meta": {...}}``. The text field is ``text``
(``content`` as a fallback); metadata is ``metadata`` or ``meta``.
"""

from __future__ import annotations

import gzip
import json
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


def read_jsonl(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield one item per line; bad lines are quarantined and reading goes on."""
    fh = open_maybe_gzip(path)
    index = 0
    offset = 0
    try:
        while True:
            try:
                line = fh.readline(config.max_record_bytes + 1)
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                yield Quarantined(index, "truncated_gzip", f"{type(exc).__name__}: {exc}", "", offset)
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
                    except (EOFError, gzip.BadGzipFile, zlib.error):
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
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Quarantined(index, "invalid_utf8", str(exc), preview(line), start)
                index += 1
                continue
            try:
                obj = json.loads(decoded)
            except json.JSONDecodeError as exc:
                yield Quarantined(index, "malformed_json", str(exc), preview(decoded), start)
                index += 1
                continue
            if not isinstance(obj, dict):
                yield Quarantined(index, "malformed_json", f"line is a JSON {type(obj).__name__}, not an object",
                                  preview(decoded), start)
            else:
                yield parse_json_record(obj, index, start)
            index += 1
    finally:
        fh.close()
