"""WARC and WET readers (Common Crawl, ClueWeb WARC/0.18, wget captures).

WARC: every HTTP ``response`` record becomes one item, an extracted page or a
quarantined record; request, metadata, warcinfo and resource records are not
documents and are skipped without an index. WET: every ``conversion`` record (text
already extracted) becomes one item. A record without its mandatory headers is
quarantined (``missing_warc_header``); bytes that do not parse as a whole record (a
file cut short, flipped bytes, a wrong Content-Length) become one quarantined item per
damaged stretch, and reading resumes at the next record that parses, so records before
and after the damage are kept. ``record_index`` counts the items of a file; ``byte_offset`` is the record's
offset in the file, so a record can be re-read with a seek.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord, ArcWarcRecordLoader

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

# mandatory for response and conversion records; a record without a type may be a document, so it is checked
_REQUIRED_HEADERS = ("WARC-Type", "WARC-Record-ID", "WARC-Target-URI")
_GZIP_MEMBER = b"\x1f\x8b\x08"  # gzip magic and deflate method: where a record of a .warc.gz may start
_SCAN_BYTES = 1 << 16

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


class _LenientLoader(ArcWarcRecordLoader):
    """warcio's record loader, except that a record without ``WARC-Target-URI`` gets no HTTP
    headers parsed instead of an AttributeError (warcio 1.8 calls ``uri.startswith``): the
    reader then quarantines the record as ``missing_warc_header`` and goes on."""

    def load_http_headers(self, rec_type: str, uri: str | None, stream: Any, length: int | None) -> Any:
        return None if uri is None else super().load_http_headers(rec_type, uri, stream, length)


class _LenientArchiveIterator(ArchiveIterator):
    def __init__(self, fileobj: IO[bytes]):
        super().__init__(fileobj)
        self.loader = _LenientLoader(verify_http=False, arc2warc=False)


class _Parsed(NamedTuple):
    """A record whose headers parsed and whose bytes were all there."""

    record: ArcWarcRecord
    body: bytes
    offset: int
    wanted: bool
    skip: tuple[str, str] | None


class _Damage(NamedTuple):
    """Bytes from ``offset`` on that do not parse as a complete record."""

    offset: int
    reason: str
    detail: str
    headers_read: bool  # False: not even a WARC header there
    preview: str = ""
    prov: dict[str, Any] = {}

    def item(self, index: int, resumed_at: int | None) -> Quarantined:
        where = (f"bytes {self.offset}..{resumed_at - 1} skipped" if resumed_at is not None
                 else f"nothing readable from byte {self.offset} to the end")
        return Quarantined(index, self.reason, f"{self.detail}; {where}", self.preview, self.offset, **self.prov)


def _missing_headers(record: ArcWarcRecord) -> tuple[str, str] | None:
    """A document record without the headers the WARC standard makes mandatory for it."""
    missing = [name for name in _REQUIRED_HEADERS if _header(record, name) is None]
    return ("missing_warc_header", f"no {', '.join(missing)}") if missing else None


def _misframed(record: ArcWarcRecord, records: ArchiveIterator, warnings_before: int) -> tuple[str, str] | None:
    """A record whose Content-Length is missing, invalid or wrong: its end is not where the next record starts.

    warcio reports a wrong length only by a warning count (the record is not followed by blank lines).
    """
    declared = record.rec_headers.get_header("Content-Length")
    if declared is None or not declared.strip().isdigit():
        return "malformed_warc_record", f"Content-Length {declared!r} is not a byte count"
    if records.err_count > warnings_before:
        return "malformed_warc_record", f"Content-Length {declared} does not end where the next record starts"
    return None


def _records_from(
    fh: IO[bytes], start: int, gzipped: bool, rec_type: str, skip_reason: SkipCheck, cap: int
) -> Iterator[_Parsed | _Damage]:
    """Parse records from byte ``start`` on, ending with one ``_Damage`` at the first record that is not whole."""
    fh.seek(start)
    records = _LenientArchiveIterator(fh)
    try:
        while True:
            record_start = records.offset
            try:
                record = next(records, None)
                if record is None:
                    return
                wanted = record.rec_type in (rec_type, None)
                skip = (_missing_headers(record) or skip_reason(record)) if wanted else None
                body = _read_capped(record, cap) if wanted and not skip else b""
                warnings_before = records.err_count
                offset = records.get_record_offset()  # after the read: it drains the record's rest
            except OSError:
                raise
            except Exception as exc:  # warcio raises many kinds on damaged bytes; the damage is quarantined
                yield _Damage(record_start, "malformed_warc_record", f"{type(exc).__name__}: {exc}", False)
                return
            damage = _truncation(record, gzipped) or _misframed(record, records, warnings_before)
            if damage:
                yield _Damage(offset, *damage, True, preview(body), _provenance(record))
                return
            yield _Parsed(record, body, offset, wanted, skip)
    finally:
        records.close()


def _next_sync_point(fh: IO[bytes], damaged_at: int, gzipped: bool) -> int | None:
    """Where a record may start after damage at ``damaged_at``: the next gzip member, or the
    next ``WARC/`` version line of an uncompressed file; None at the end of the file."""
    mark, lead = (_GZIP_MEMBER, 0) if gzipped else (b"\nWARC/", 1)
    scanned = damaged_at + 1 - lead
    fh.seek(scanned)
    window = b""
    while chunk := fh.read(_SCAN_BYTES):
        window += chunk
        found = window.find(mark)
        if found >= 0:
            return scanned + found + lead
        kept = len(mark) - 1
        scanned += len(window) - kept
        window = window[-kept:]
    return None


def _item(parsed: _Parsed, index: int, config: ReaderConfig, build: ItemBuilder) -> ReadItem:
    record, body, offset = parsed.record, parsed.body, parsed.offset
    if parsed.skip:
        return Quarantined(index, *parsed.skip, "", offset, **_provenance(record))
    if len(body) > config.max_record_bytes:
        return Quarantined(index, "over_size_cap", f"payload is over {config.max_record_bytes} bytes",
                           preview(body), offset, **_provenance(record))
    return build(record, body, index, offset, config)


def _read_records(
    path: Path, config: ReaderConfig, rec_type: str, build: ItemBuilder, skip_reason: SkipCheck = _no_skip
) -> Iterator[ReadItem]:
    """Yield one item per ``rec_type`` record. Damaged bytes become one quarantined item per
    damaged stretch, and reading resumes at the next record that parses (gzip members and
    ``WARC/`` lines are where records start), so one bad record costs only itself.

    A file in which no WARC header parses anywhere is not a WARC file at all: that raises.
    """
    fh, gzipped = _open(path)
    index = 0
    pending: _Damage | None = None  # damage not yet reported: it ends where a record parses again
    parsed_any = False
    start: int | None = 0
    try:
        while start is not None:
            damage = None
            for event in _records_from(fh, start, gzipped, rec_type, skip_reason, config.max_record_bytes):
                if isinstance(event, _Damage):
                    damage = event
                    break
                parsed_any = True
                if pending:
                    yield pending.item(index, start)
                    index, pending = index + 1, None
                if event.wanted:
                    yield _item(event, index, config, build)
                    index += 1
            if damage is None:
                break
            parsed_any = parsed_any or damage.headers_read
            pending = pending or damage  # a resync that fails again extends the damage already pending
            start = _next_sync_point(fh, damage.offset, gzipped)
        if pending and not parsed_any:
            raise SourceFileError(path, f"not a WARC file: {pending.detail}")
        if pending:
            yield pending.item(index, None)
    except OSError as exc:
        raise SourceFileError(path, f"read failed: {exc}") from exc
    finally:
        fh.close()


def read_warc(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield one item per HTTP response record of a WARC file (``.warc`` or ``.warc.gz``)."""
    return _read_records(path, config, "response", _response_item, _skip_reason)


def read_wet(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield one item per conversion record of a WET file."""
    return _read_records(path, config, "conversion", _conversion_item)
