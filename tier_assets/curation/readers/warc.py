"""WARC and WET readers (Common Crawl, ClueWeb WARC/0.18, wget captures).

WARC: every HTTP ``response`` record becomes one item, an extracted page or a
quarantined record; request, metadata, warcinfo and resource records are not
documents and are skipped without an index. WET: every ``conversion`` record (text
already extracted) becomes one item. A file cut short or broken mid-way yields one
quarantined item for the damaged record and reading stops there, keeping all earlier
records. ``record_index`` counts the items of a file; ``byte_offset`` is the record's
offset in the file, so a record can be re-read with a seek.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException

from tier_assets.curation.readers.base import (
    Extracted,
    Quarantined,
    ReaderConfig,
    ReadItem,
    SourceFileError,
    preview,
)
from tier_assets.curation.readers.html import Rejection, header_charset, html_page

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"})
_HTML_SNIFF = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<meta")
_KEPT_HEADERS = {  # WARC headers kept in meta: crawler truncation and the ClueWeb document id
    "WARC-Truncated": "warc_truncated",
    "WARC-TREC-ID": "trec_id",
    "WARC-Identified-Content-Language": "identified_languages",
    "WARC-Refers-To": "refers_to",
}

ItemBuilder = Callable[[ArcWarcRecord, bytes, int, int, ReaderConfig], ReadItem]
SkipCheck = Callable[[ArcWarcRecord], tuple[str, str] | None]


def _open(path: Path) -> tuple[IO[bytes], bool]:
    """Open the file and tell whether it is gzipped (by magic), raising SourceFileError if it cannot be read."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the reader's finally
        gzipped = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
    except OSError as exc:
        raise SourceFileError(path, exc.strerror or str(exc)) from exc
    return fh, gzipped


def _header(record: ArcWarcRecord, name: str) -> str | None:
    return record.rec_headers.get_header(name) or None


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _read_capped(record: ArcWarcRecord, cap: int) -> bytes:
    """The payload (HTTP body, de-chunked and decompressed), at most ``cap + 1`` bytes so an
    oversized one is seen without being held."""
    return record.content_stream().read(cap + 1)


def _truncation(record: ArcWarcRecord, gzipped: bool) -> tuple[str, str] | None:
    """Whether the record ended before its Content-Length (file cut or corrupt mid-record).

    warcio reports neither: it ends the record early, so the bytes left unread tell.
    """
    missing = getattr(record.raw_stream, "limit", 0)
    if missing <= 0:
        return None
    declared = record.length
    detail = f"record ends {missing} of {declared} bytes early"
    return ("truncated_gzip" if gzipped else "malformed_warc_record"), detail


def _provenance(record: ArcWarcRecord) -> dict[str, Any]:
    return {"url": _header(record, "WARC-Target-URI"), "warc_record_id": _header(record, "WARC-Record-ID")}


def _meta(record: ArcWarcRecord, **extra: Any) -> dict[str, Any]:
    kept = {key: _header(record, name) for name, key in _KEPT_HEADERS.items()}
    return {k: v for k, v in {**kept, **extra}.items() if v is not None}


def _skip_reason(record: ArcWarcRecord) -> tuple[str, str] | None:
    """Why a response record is not an HTML page, known before reading its payload."""
    if record.http_headers is None:
        return "non_html_payload", f"not an HTTP response ({_header(record, 'Content-Type')})"
    status = record.http_headers.get_statuscode() or ""
    if not status.startswith("2"):
        return "http_status", f"HTTP status {status or 'missing'}"
    mime = _mime(record.http_headers.get_header("Content-Type") or _header(record, "WARC-Identified-Payload-Type"))
    if mime and mime not in _HTML_TYPES:
        return "non_html_payload", record.http_headers.get_header("Content-Type") or mime
    return None


def _looks_like_html(body: bytes) -> bool:
    """For payloads without a Content-Type: markup near the start."""
    head = body[:1024].lstrip().lower()
    return any(tag in head for tag in _HTML_SNIFF)


def _response_item(record: ArcWarcRecord, body: bytes, index: int, offset: int, config: ReaderConfig) -> ReadItem:
    """An HTTP response whose payload may be HTML: decode, extract, keep provenance."""
    prov = _provenance(record)
    content_type = record.http_headers.get_header("Content-Type")
    if not content_type and not _looks_like_html(body):
        return Quarantined(index, "non_html_payload", "no Content-Type and not HTML", preview(body), offset, **prov)
    page = html_page(body, header_charset(content_type), prov["url"], config)
    if isinstance(page, Rejection):
        return Quarantined(index, page.reason, page.detail, page.preview, offset, **prov)
    return Extracted(
        text=page.text,
        record_index=index,
        byte_offset=offset,
        title=page.title,
        crawl_date=_header(record, "WARC-Date"),
        meta=_meta(record, encoding=page.encoding, content_type=content_type),
        **prov,
    )


def _conversion_item(record: ArcWarcRecord, body: bytes, index: int, offset: int, config: ReaderConfig) -> ReadItem:
    """A WET conversion record: plain UTF-8 text already extracted by the crawler."""
    prov = _provenance(record)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Quarantined(index, "invalid_utf8", str(exc), preview(body), offset, **prov)
    if len(text.strip()) < config.min_html_chars:
        return Quarantined(index, "empty_extraction", f"text under {config.min_html_chars} chars",
                           preview(text), offset, **prov)
    return Extracted(text=text, record_index=index, byte_offset=offset,
                     crawl_date=_header(record, "WARC-Date"), meta=_meta(record), **prov)


def _no_skip(record: ArcWarcRecord) -> None:
    return None


def _read_records(
    path: Path, config: ReaderConfig, rec_type: str, build: ItemBuilder, skip_reason: SkipCheck = _no_skip
) -> Iterator[ReadItem]:
    """Yield one item per ``rec_type`` record, stopping (after one quarantined item) at damage.

    A file whose very first record cannot be parsed is not a WARC file at all: that raises.
    """
    fh, gzipped = _open(path)
    records = ArchiveIterator(fh)
    index = 0
    try:
        while True:
            try:
                record = next(records, None)
                if record is None:
                    return
                wanted = record.rec_type == rec_type
                skip = skip_reason(record) if wanted else None
                body = _read_capped(record, config.max_record_bytes) if wanted and not skip else b""
                offset = records.get_record_offset()  # after the read: it drains the record's rest
            except (ArchiveLoadFailed, StatusAndHeadersParserException) as exc:
                if records.offset == 0:
                    raise SourceFileError(path, f"not a WARC file: {exc}") from exc
                yield Quarantined(index, "malformed_warc_record", f"{type(exc).__name__}: {exc}", "",
                                  records.offset)
                return
            except OSError as exc:
                raise SourceFileError(path, f"read failed: {exc}") from exc
            damage = _truncation(record, gzipped)
            if damage:
                yield Quarantined(index, *damage, preview(body), offset, **_provenance(record))
                return
            if not wanted:
                continue
            if skip:
                yield Quarantined(index, *skip, "", offset, **_provenance(record))
            elif len(body) > config.max_record_bytes:
                yield Quarantined(index, "over_size_cap", f"payload is over {config.max_record_bytes} bytes",
                                  preview(body), offset, **_provenance(record))
            else:
                yield build(record, body, index, offset, config)
            index += 1
    finally:
        records.close()
        fh.close()


def read_warc(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield one item per HTTP response record of a WARC file (``.warc`` or ``.warc.gz``)."""
    return _read_records(path, config, "response", _response_item, _skip_reason)


def read_wet(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield one item per conversion record of a WET file."""
    return _read_records(path, config, "conversion", _conversion_item)
