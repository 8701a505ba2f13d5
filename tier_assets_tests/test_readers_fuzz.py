"""Every L0 reader fed damaged real files: no exception escapes, every record is accounted for,
and the records the damage did not touch are kept.

Each test takes real files (``../shared/data``, ``tier_assets/demo_data``), damages one the way
files get damaged (truncation, flipped or overwritten bytes, deleted headers, wrong lengths,
wrong charsets), ingests it with ``ingest_partition`` as ``l0_raw`` does, and checks:

- nothing but ``SourceFileError`` escapes, and that only for a file that cannot be opened at all
  (the documented behaviour: a Parquet footer, or a WARC with no record left that parses);
- ``records_accounted`` holds: read = kept + quarantined, every record index once, byte offsets
  strictly increasing (no record written twice), a documented reason for every quarantined one;
- the records of the undamaged file that the damage did not touch are kept, in order, where the
  format can resume after damage (JSONL lines, WARC records, Parquet row groups; in a gzip stream
  only what comes before the damage).

Hypothesis runs derandomized with a bounded number of examples, so CI sees the same cases every
time and the file runs in well under a minute; ``FUZZ_SCALE=50`` runs fifty times as many.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sysconfig
import tempfile
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from tier_assets.curation.l0 import accounting_problems, ingest_partition
from tier_assets.curation.readers import ReaderConfig, SourceFileError
from tier_assets.curation.sources import SourceEntry
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets_tests.conftest import DEMO_DATA, SHARED_DATA

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"real data not found at {SHARED_DATA}")

CONFIG = ReaderConfig(max_record_bytes=300_000)  # small enough that the "wrong length" damage can exceed it
KNOWN_REASONS = frozenset({
    "malformed_json", "invalid_utf8", "empty_text", "binary_content", "over_size_cap", "truncated_gzip",
    "corrupt_gzip", "non_html_payload", "http_status", "malformed_warc_record", "missing_warc_header",
    "empty_extraction", "extraction_error", "invalid_encoding", "missing_text", "corrupt_parquet",
    "unknown_language",
})
# Python's gzip loses the output of the one read that hits bad data: up to a buffer (8 KiB) before it
GZIP_READ_LOSS = io.DEFAULT_BUFFER_SIZE
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- the undamaged files and what they read as ----------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Record:
    """A record of an undamaged file: its bytes ``[start, end)`` (up to the next record) and its kept text."""

    start: int
    end: int
    text: str | None  # None: not a kept document (quarantined, or not a document record)


@dataclass(frozen=True, repr=False)
class Source:
    name: str  # file name, with the suffix the reader is picked by
    fmt: str
    data: bytes
    records: tuple[Record, ...] = ()

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, repr=False)
class Damage:
    """A damaged copy of a source; ``[start, end)`` are the original's bytes it touches (start == end: inserted)."""

    data: bytes
    start: int
    end: int
    kind: str

    def __repr__(self) -> str:
        return f"Damage({self.kind}, bytes {self.start}..{self.end})"


@dataclass(frozen=True)
class Item:
    record_index: int
    byte_offset: int | None
    text: str | None  # None for a quarantined record
    reason: str | None


@dataclass(frozen=True)
class Outcome:
    items: list[Item]  # kept and quarantined, by record index
    error: SourceFileError | None = None

    @property
    def kept(self) -> list[str]:
        return [i.text for i in self.items if i.text is not None]


def ingest(data: bytes, name: str, fmt: str) -> Outcome:
    """Ingest one file into a fresh L0 partition and check ``records_accounted`` on what was written."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        store = TierStore(Path(tmp) / "root")
        ref = PartitionRef("L0", "en", "fuzz")
        try:
            stats = ingest_partition(store, ref, [SourceEntry("fuzz", "en", fmt, str(path), relpath=name)], CONFIG)
        except SourceFileError as exc:
            assert str(path) in str(exc)
            return Outcome([], exc)
        assert accounting_problems(store, ref, expected_read=stats.read) == []
        kept = store.read(ref, "tiers", columns=["record_index", "byte_offset", "text"]).to_pylist()
        rejected = store.read(ref, "rejected", columns=["record_index", "byte_offset", "reason"]).to_pylist()
    items = sorted([Item(r["record_index"], r["byte_offset"], r["text"], None) for r in kept]
                   + [Item(r["record_index"], r["byte_offset"], None, r["reason"]) for r in rejected],
                   key=lambda i: i.record_index)
    assert stats.read == stats.kept + stats.quarantined == len(items)
    assert (stats.kept, stats.quarantined) == (len(kept), len(rejected))
    assert_accounted(items, contiguous=fmt != "parquet")
    return Outcome(items)


def assert_accounted(items: list[Item], contiguous: bool) -> None:
    """Each record once: distinct indexes (0..n-1 where the reader counts items), offsets strictly increasing."""
    indexes = [i.record_index for i in items]
    assert len(set(indexes)) == len(indexes)
    if contiguous:
        assert indexes == list(range(len(items)))
    offsets = [i.byte_offset for i in items if i.byte_offset is not None]
    assert offsets == sorted(set(offsets)), "a byte offset read twice or out of order"
    unknown = {i.reason for i in items if i.text is None} - KNOWN_REASONS
    assert not unknown, f"undocumented quarantine reasons {unknown}"


def assert_kept_in_order(expected: list[str], kept: list[str]) -> None:
    """``expected`` is a subsequence of ``kept``: each text kept, once, in file order."""
    remaining = iter(kept)
    for n, text in enumerate(expected):
        assert any(text == k for k in remaining), f"untouched record {n} of {len(expected)} lost: {text[:80]!r}"


def untouched(source: Source, start: int, end: int) -> list[str]:
    """Kept texts of the records clear of ``[start, end)``; the record right after it is excused too
    (damage to a record's end, its newline or its gzip trailer, can take the next one with it)."""
    return [r.text for r in source.records if r.text is not None and (r.end <= start or r.start > end)]


def with_records(source: Source, spans: list[tuple[int, int]], by_row: bool = False) -> Source:
    """The source with its records' kept texts, from one ingest of the undamaged file. Records are
    matched by byte offset, or by row number (Parquet rows have no offset)."""
    outcome = ingest(source.data, source.name, source.fmt)
    assert outcome.error is None
    kept = {i.record_index if by_row else i.byte_offset: i.text for i in outcome.items if i.text is not None}
    records = tuple(Record(start, end, kept.get(row if by_row else start)) for row, (start, end) in enumerate(spans))
    assert sum(r.text is not None for r in records) >= 2, f"{source.name}: too few documents to fuzz"
    return Source(source.name, source.fmt, source.data, records)


# --- damage ------------------------------------------------------------------------------------------------------


@st.composite
def byte_damage(draw: st.DrawFn, data: bytes, kinds: tuple[str, ...] = ("truncate", "flip", "overwrite",
                                                                         "delete", "insert")) -> Damage:
    """Damage anywhere in the bytes: cut the file short, flip one bit, overwrite, delete or insert a run."""
    kind = draw(st.sampled_from(kinds))
    at = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        return Damage(data[:at], at, len(data), kind)
    if kind == "flip":
        flipped = data[at] ^ (1 << draw(st.integers(0, 7)))
        return Damage(data[:at] + bytes([flipped]) + data[at + 1:], at, at + 1, kind)
    if kind == "insert":
        return Damage(data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:], at, at, kind)
    end = min(len(data), at + draw(st.integers(1, 64)))
    replacement = draw(st.binary(min_size=end - at, max_size=end - at)) if kind == "overwrite" else b""
    return Damage(data[:at] + replacement + data[end:], at, end, kind)


def splice(source: Source, record: Record, new: bytes, kind: str) -> Damage:
    return Damage(source.data[:record.start] + new + source.data[record.end:], record.start, record.end, kind)


# --- JSONL ---------------------------------------------------------------------------------------------------------


def line_spans(text: bytes) -> list[tuple[int, int]]:
    spans, start = [], 0
    for line in text.splitlines(keepends=True):
        if line.strip():
            spans.append((start, start + len(line)))
        start += len(line)
    return spans


@cache
def jsonl_sources() -> list[Source]:
    files = [SHARED_DATA / "web/redpajama-c4-sample.jsonl", SHARED_DATA / "math/stackexchange-sample-a.jsonl",
             DEMO_DATA / "en/redpajama-cc-2023-06-sample.jsonl"]
    sources = [Source(f.name, "jsonl", f.read_bytes()) for f in files]
    return [with_records(s, line_spans(s.data)) for s in sources]


@st.composite
def jsonl_line_damage(draw: st.DrawFn, source: Source) -> Damage:
    """Damage one line: cut short, its text field deleted, re-encoded in another charset, made longer than
    the size cap, or joined with the next line."""
    record = draw(st.sampled_from(source.records))
    line = source.data[record.start:record.end].rstrip(b"\n")
    kind = draw(st.sampled_from(["cut", "drop_text", "recode", "oversize", "join"]))
    if kind == "cut":
        return splice(source, record, line[:draw(st.integers(0, len(line) - 1))] + b"\n", kind)
    if kind == "join":
        return splice(source, record, line, kind)
    if kind == "recode":
        codec = draw(st.sampled_from(["latin-1", "gb18030", "shift_jis", "utf-16", "cp1252"]))
        return splice(source, record, line.decode("utf-8").encode(codec, errors="replace") + b"\n", kind)
    obj = json.loads(line)
    if kind == "drop_text":
        obj.pop("text")
    else:
        obj["text"] += " padding" * (CONFIG.max_record_bytes // 8 + 1)
    return splice(source, record, json.dumps(obj).encode() + b"\n", kind)


@fuzz_settings(30)
@given(st.data())
def test_jsonl_damage_costs_only_the_damaged_lines(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(jsonl_sources()))
    damage = data.draw(st.one_of(byte_damage(source.data), jsonl_line_damage(source)))
    outcome = ingest(damage.data, source.name, "jsonl")
    assert outcome.error is None
    assert_kept_in_order(untouched(source, damage.start, damage.end), outcome.kept)
    if damage.kind in ("drop_text", "oversize"):
        reason = {"drop_text": "missing_text", "oversize": "over_size_cap"}[damage.kind]
        assert [i.reason for i in outcome.items if i.byte_offset == damage.start] == [reason]


def test_jsonl_lone_surrogate_and_deep_nesting_are_quarantined_and_reading_goes_on(tmp_path: Path) -> None:
    """A \\ud800 escape decodes to a str that no UTF-8 file can hold: it used to crash the Parquet write of
    the whole partition. Nesting past the recursion limit raised RecursionError out of json.loads."""
    real = (SHARED_DATA / "web/redpajama-c4-sample.jsonl").read_bytes().splitlines(keepends=True)
    lone = json.dumps({"text": "a title with a cut emoji", "metadata": {"title": "\ud83d"}}).encode() + b"\n"
    pair = json.dumps({"text": "a whole emoji \U0001f600"}).encode() + b"\n"  # escaped as a valid pair
    deep = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    outcome = ingest(real[0] + lone + pair + deep + real[1], "mixed.jsonl", "jsonl")
    assert [i.reason for i in outcome.items] == [None, "invalid_utf8", None, "malformed_json", None]
    assert outcome.kept[1] == "a whole emoji \U0001f600"
    assert outcome.kept[::2] == [json.loads(line)["text"] for line in real[:2]]


# --- JSONL.gz ------------------------------------------------------------------------------------------------------


@cache
def jsonl_gz_sources() -> list[Source]:
    files = [DEMO_DATA / "en/ccnet-en-head-0091.jsonl.gz", SHARED_DATA / "web/ccnet-en-head-0174.jsonl.gz"]
    sources = [Source(f.name, "jsonl", f.read_bytes()) for f in files]
    return [with_records(s, line_spans(gzip.decompress(s.data))) for s in sources]


def decodable_prefix(compressed: bytes, at: int) -> int:
    """How many bytes of text the first ``at`` bytes of a gzip stream decode to."""
    return len(zlib.decompressobj(wbits=31).decompress(compressed[:at]))


@st.composite
def gzip_trailer_damage(draw: st.DrawFn, data: bytes) -> Damage:
    """A wrong CRC or length in the gzip trailer (its last 8 bytes)."""
    at = len(data) - draw(st.integers(1, 8))
    return Damage(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:], at, at + 1, "trailer")


@fuzz_settings(20)
@given(st.data())
def test_jsonl_gz_damage_keeps_every_line_before_it(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(jsonl_gz_sources()))
    damage = data.draw(st.one_of(byte_damage(source.data), gzip_trailer_damage(source.data)))
    outcome = ingest(damage.data, source.name, "jsonl")
    assert outcome.error is None
    safe = decodable_prefix(source.data, damage.start) - GZIP_READ_LOSS
    assert_kept_in_order([r.text for r in source.records if r.text is not None and r.end <= safe], outcome.kept)
    if damage.kind == "trailer":
        assert outcome.kept == [r.text for r in source.records if r.text is not None]
        assert outcome.items[-1].reason == "corrupt_gzip"


# --- Parquet -------------------------------------------------------------------------------------------------------


def row_group_spans(path: Path) -> list[tuple[int, int, int, int]]:
    """(first byte, end byte, first row, end row) of each row group's column chunks."""
    meta = pq.ParquetFile(path).metadata
    spans, first_row = [], 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        chunks = [group.column(c) for c in range(group.num_columns)]
        starts = [c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset for c in chunks]
        ends = [s + c.total_compressed_size for s, c in zip(starts, chunks, strict=True)]
        spans.append((min(starts), max(ends), first_row, first_row + group.num_rows))
        first_row += group.num_rows
    return spans


@cache
def parquet_sources() -> list[Source]:
    """Real Common Crawl documents (Dolma) as Parquet, four row groups, uncompressed and snappy."""
    lines = gzip.decompress((SHARED_DATA / "web/cc-main-2019-30-dolma.jsonl.gz").read_bytes()).splitlines()
    table = pa.Table.from_pylist([json.loads(line) for line in lines[:60]])
    sources = []
    with tempfile.TemporaryDirectory() as tmp:
        for compression in ("none", "snappy"):
            path = Path(tmp) / f"dolma-{compression}.parquet"
            pq.write_table(table, path, row_group_size=15, compression=compression)
            # a row's bytes are its row group's
            spans = [(start, end) for start, end, first, last in row_group_spans(path) for _ in range(first, last)]
            sources.append(with_records(Source(path.name, "parquet", path.read_bytes()), spans, by_row=True))
    return sources


@st.composite
def parquet_damage(draw: st.DrawFn, source: Source) -> Damage:
    """Bytes flipped or overwritten in place (invalid UTF-8 among them), in a row group's pages or anywhere."""
    record = draw(st.sampled_from(source.records))
    at = draw(st.one_of(st.integers(record.start, record.end - 1), st.integers(0, len(source.data) - 1)))
    run = draw(st.integers(1, 16))
    junk = draw(st.one_of(st.binary(min_size=run, max_size=run), st.just(b"\xc3\x28\xff" * run)))[:run]
    end = min(len(source.data), at + len(junk))
    return Damage(source.data[:at] + junk[:end - at] + source.data[end:], at, end, "overwrite")


@fuzz_settings(20)
@given(st.data())
def test_parquet_damage_costs_only_its_row_group(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(parquet_sources()))
    damage = data.draw(st.one_of(parquet_damage(source), byte_damage(source.data, ("truncate", "flip"))))
    outcome = ingest(damage.data, source.name, "parquet")
    in_row_groups = any(r.start <= damage.start and damage.end <= r.end for r in source.records)
    if outcome.error is not None:
        assert not in_row_groups or damage.kind == "truncate"  # only a damaged footer (or none) fails the file
        return
    kept = {i.record_index: i.text for i in outcome.items if i.text is not None}
    for row, record in enumerate(source.records):
        if record.text is not None and (record.end <= damage.start or record.start >= damage.end):
            assert kept.get(row) == record.text, f"row {row} of an undamaged row group lost"


# --- WARC and WET --------------------------------------------------------------------------------------------------


def warc_spans(data: bytes) -> list[tuple[int, int]]:
    records = ArchiveIterator(io.BytesIO(data))
    starts = [records.get_record_offset() for _ in records]
    return list(zip(starts, [*starts[1:], len(data)], strict=True))


def first_records(path: Path, count: int) -> bytes:
    """The bytes of the first ``count`` records of a real .warc.gz (whole gzip members)."""
    data = path.read_bytes()
    return data[:warc_spans(data)[count][0]]


def built_wet() -> bytes:
    """The real one-page WET file, then conversion records of real Common Crawl text (Dolma)."""
    out = io.BytesIO((SHARED_DATA / "warc/cc-main-2024-22-one-page.warc.wet.gz").read_bytes())
    out.seek(0, io.SEEK_END)
    writer = WARCWriter(out, gzip=True)
    lines = gzip.decompress((SHARED_DATA / "web/cc-main-2019-30-dolma.jsonl.gz").read_bytes()).splitlines()
    for doc in map(json.loads, lines[:4]):
        writer.write_record(writer.create_warc_record(doc["metadata"]["url"], "conversion",
                                                      payload=io.BytesIO(doc["text"].encode()),
                                                      warc_content_type="text/plain"))
    return out.getvalue()


@cache
def warc_sources() -> list[Source]:
    gz = [("cc-main-2020-34.warc.gz", first_records(DEMO_DATA / "zh/cc-main-2020-34-excerpt.warc.gz", 10)),
          ("wget-sample-0001.warc.gz", first_records(SHARED_DATA / "warc/wget-sample-0001.warc.gz", 7)),
          ("clueweb09-eucjp.warc.gz", first_records(SHARED_DATA / "warc/clueweb09-eucjp-quirks.warc.gz", 4))]
    sources = [Source(name, "warc", data) for name, data in gz]
    sources.append(Source("cc-main-2020-34.warc", "warc", gzip.decompress(sources[0].data)))  # and uncompressed
    return [with_records(s, warc_spans(s.data)) for s in sources]


@cache
def wet_sources() -> list[Source]:
    data = built_wet()
    sources = [Source("built.warc.wet.gz", "wet", data), Source("built.warc.wet", "wet", gzip.decompress(data))]
    return [with_records(s, warc_spans(s.data)) for s in sources]


_CHARSET = re.compile(rb"charset=[\w.:-]+", re.I)


def rebuilt_record(record: bytes, draw: st.DrawFn, kind: str) -> bytes:
    """One uncompressed record with a header deleted, a wrong Content-Length, or a wrong HTTP charset label."""
    head, _, block = record.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if kind == "drop_header":
        name = draw(st.sampled_from([b"WARC-Record-ID", b"WARC-Target-URI", b"WARC-Type", b"Content-Length"]))
        return b"\r\n".join(line for line in lines if not line.lower().startswith(name.lower() + b":")) \
            + b"\r\n\r\n" + block
    if kind == "wrong_charset":
        label = draw(st.sampled_from([b"utf-8", b"shift_jis", b"gb2312", b"iso-8859-1", b"utf-16", b"x-bogus"]))
        http_head, sep, body = block.partition(b"\r\n\r\n")
        http_head = _CHARSET.sub(b"charset=" + label, http_head) if _CHARSET.search(http_head) else \
            http_head.replace(b"Content-Type: text/html", b"Content-Type: text/html; charset=" + label)
        block = http_head + sep + body
        length = len(block)
    else:
        length = len(block) + draw(st.sampled_from([-40, -2, -1, 1, 2, 40, 10**6]))
    lines = [line for line in lines if not line.lower().startswith(b"content-length:")]
    return b"\r\n".join([*lines, b"Content-Length: %d" % length]) + b"\r\n\r\n" + block


@st.composite
def warc_record_damage(draw: st.DrawFn, source: Source) -> Damage:
    """One record rebuilt with damaged headers (a gzip member recompressed, so only that record changes)."""
    record = draw(st.sampled_from(source.records))
    gzipped = source.name.endswith(".gz")
    raw = source.data[record.start:record.end]
    plain = gzip.decompress(raw) if gzipped else raw
    trailer = b"\r\n\r\n" if plain.endswith(b"\r\n\r\n") else b""
    kind = draw(st.sampled_from(["drop_header", "wrong_length", "wrong_charset"]))
    new = rebuilt_record(plain.removesuffix(trailer), draw, kind) + trailer
    return splice(source, record, gzip.compress(new) if gzipped else new, kind)


def check_warc(source: Source, damage: Damage) -> None:
    outcome = ingest(damage.data, source.name, source.fmt)
    if outcome.error is not None:  # not a WARC file: allowed only when the first record is damaged
        assert damage.start < source.records[0].end and "not a WARC file" in str(outcome.error)
        return
    assert_kept_in_order(untouched(source, damage.start, damage.end), outcome.kept)


@fuzz_settings(15)
@given(st.data())
def test_warc_damage_costs_only_the_damaged_records(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(warc_sources()))
    damage = data.draw(st.one_of(byte_damage(source.data), warc_record_damage(source)))
    check_warc(source, damage)


@fuzz_settings(12)
@given(st.data())
def test_wet_damage_costs_only_the_damaged_records(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(wet_sources()))
    damage = data.draw(st.one_of(byte_damage(source.data), warc_record_damage(source)))
    check_warc(source, damage)


@pytest.mark.parametrize("header", ["WARC-Record-ID", "WARC-Target-URI", "WARC-Type"])
def test_warc_record_missing_a_mandatory_header_is_quarantined_and_the_next_kept(header: str) -> None:
    """Each response record in turn loses the header: it is quarantined, the others are all kept."""
    source = next(s for s in warc_sources() if s.name == "cc-main-2020-34.warc")
    documents = [r for r in source.records if r.text is not None]
    for record in documents:
        raw = source.data[record.start:record.end]
        stripped = re.sub(rb"\r\n" + header.encode() + rb": [^\r]*", b"", raw, count=1)
        outcome = ingest(source.data[:record.start] + stripped + source.data[record.end:], source.name, "warc")
        damaged = [i for i in outcome.items if i.byte_offset == record.start]
        assert [i.reason for i in damaged] == ["missing_warc_header"]
        assert outcome.kept == [r.text for r in documents if r is not record]


# --- HTML and code: one document per file ----------------------------------------------------------------------


@cache
def html_sources() -> list[Source]:
    files = [DEMO_DATA / "zh/magic-html/9f4c1adb9f61d954f33a02ef1919248e69c007dcbe9d903a0e77b739779951da.html",
             SHARED_DATA / "html/dclm-pages/common_crawl_paragraph1.html",
             SHARED_DATA / "html/article-extraction-benchmark/html/"
                           "85439e26c41c75901820d01a13e8cea7836abb58635ea3986f71a163ab0311d3.html.gz"]
    return [Source(f.name, "html", f.read_bytes()) for f in files]


@st.composite
def charset_damage(draw: st.DrawFn, source: Source) -> Damage:
    """The page re-encoded in another charset than it declares, or declaring another one."""
    data = gzip.decompress(source.data) if source.name.endswith(".gz") else source.data
    if draw(st.booleans()):
        codec = draw(st.sampled_from(["gb18030", "shift_jis", "euc-kr", "latin-1", "utf-16"]))
        data = data.decode("utf-8").encode(codec, errors="replace")
    else:
        label = draw(st.sampled_from([b"shift_jis", b"gb2312", b"iso-8859-1", b"utf-16", b"x-bogus"]))
        data = _CHARSET.sub(b"charset=" + label, data)
    return Damage(gzip.compress(data) if source.name.endswith(".gz") else data, 0, len(source.data), "charset")


def assert_one_document_or_quarantined(outcome: Outcome) -> None:
    assert outcome.error is None and len(outcome.items) == 1 and outcome.items[0].record_index == 0


@fuzz_settings(10)
@given(st.data())
def test_html_damage_is_one_document_or_one_quarantined_page(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(html_sources()))
    damage = data.draw(st.one_of(byte_damage(source.data), charset_damage(source)))
    assert_one_document_or_quarantined(ingest(damage.data, source.name, "html"))


@cache
def code_sources() -> list[Source]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [Source(name, "code", (stdlib / name).read_bytes()) for name in ("getopt.py", "shlex.py", "heapq.py")]


@st.composite
def code_charset_damage(draw: st.DrawFn, source: Source) -> Damage:
    codec = draw(st.sampled_from(["latin-1", "cp1252", "utf-16", "utf-32", "gb18030"]))
    return Damage(source.data.decode("utf-8").encode(codec, errors="replace"), 0, len(source.data), "charset")


@fuzz_settings(20)
@given(st.data())
def test_code_damage_is_one_document_or_one_quarantined_file(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(code_sources()))
    damage = data.draw(st.one_of(byte_damage(source.data), code_charset_damage(source)))
    outcome = ingest(damage.data, source.name, "code")
    assert_one_document_or_quarantined(outcome)
    if damage.kind == "charset" and damage.data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        assert outcome.items[0].reason == "binary_content"  # UTF-16/32 has NUL bytes
