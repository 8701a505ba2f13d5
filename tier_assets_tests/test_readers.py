"""L0 readers on real data (../shared/data) and on every kind of bad input."""

from __future__ import annotations

import gzip
import io
import json
import sysconfig
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tier_assets.curation.readers import (
    Extracted,
    Quarantined,
    ReaderConfig,
    ReadItem,
    SourceFileError,
    get_reader,
    infer_format,
)
from tier_assets.curation.readers.code import iter_code_tree, language_of, read_code_file
from tier_assets.curation.readers.html import EncodingError, decode_html_bytes, extract_main_text, read_html
from tier_assets.curation.readers.jsonl import read_jsonl
from tier_assets.curation.readers.parquet import read_parquet
from tier_assets.curation.readers.warc import read_warc, read_wet

CONFIG = ReaderConfig()
MOJIBAKE = ("Ã", "â€", "Â", "\ufffd")  # UTF-8 read as cp1252, and replacement characters


def _shared_data() -> Path:
    """The real-data folder beside the clone (../shared/data), as on CI."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def data() -> Path:
    root = _shared_data()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    return root


def _split(items: list[ReadItem]) -> tuple[list[Extracted], list[Quarantined]]:
    return [i for i in items if isinstance(i, Extracted)], [i for i in items if isinstance(i, Quarantined)]


def _cut(src: Path, dst: Path, keep: int) -> Path:
    dst.write_bytes(src.read_bytes()[:keep])
    return dst


# --- JSONL -------------------------------------------------------------------------------------------------


def test_jsonl_dolma_reads_every_document_with_provenance(data: Path) -> None:
    items = list(read_jsonl(data / "web/cc-main-2019-30-dolma.jsonl.gz", CONFIG))
    docs, bad = _split(items)
    assert len(docs) == 697 and bad == []
    assert [d.record_index for d in docs] == list(range(697))
    first = docs[0]
    assert first.source_doc_id == "blj5uzvcoa4iybpd5o6kom5nir6ngmoj"
    assert first.text.startswith("A New Home?")
    assert first.url == "http://16thfleet.wikidot.com/chatter:anewhome"  # metadata.warc_url before url
    assert first.crawl_date == "2019-07-17T12:15:59.000Z"
    assert first.meta["source"] == "test_gz" and first.meta["uncompressed_offset"] == 813814
    offsets = [d.byte_offset for d in docs]
    assert offsets[0] == 0 and offsets == sorted(set(offsets))


def test_jsonl_meta_convention(data: Path) -> None:
    docs, bad = _split(list(read_jsonl(data / "math/arxiv-latex-sample.jsonl", CONFIG)))
    assert len(docs) == 11 and bad == []
    assert docs[0].url == "https://arxiv.org/abs/1712.01076"
    assert docs[0].lang == "en" and docs[0].meta["arxiv_id"] == "1712.01076"
    plain, _ = _split(list(read_jsonl(data / "web/redpajama-c4-sample.jsonl", CONFIG)))
    assert len(plain) == 10 and plain[0].text.startswith("Athlone Community Radio") and plain[0].meta == {}


def test_jsonl_bad_lines_are_quarantined_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"id": "a", "text": "good one"}\n'
        b'{"id": "b", "text": "unterminated\n'
        b'{"id": "c", "text": "caf\xe9"}\n'
        b"\n"
        b'["an", "array"]\n'
        b'{"id": "e", "body": "no text field"}\n'
        b'{"id": "f", "text": "good two"}\n'
    )
    items = list(read_jsonl(path, CONFIG))
    reasons = [i.reason if isinstance(i, Quarantined) else i.text for i in items]
    assert reasons == ["good one", "malformed_json", "invalid_utf8", "malformed_json", "missing_text", "good two"]
    assert [i.record_index for i in items] == [0, 1, 2, 3, 4, 5]
    assert "caf\ufffd" in items[2].preview


def test_jsonl_truncated_gzip_keeps_what_was_read(data: Path, tmp_path: Path) -> None:
    src = data / "web/cc-main-2019-30-dolma.jsonl.gz"
    full, _ = _split(list(read_jsonl(src, CONFIG)))
    items = list(read_jsonl(_cut(src, tmp_path / "cut.jsonl.gz", src.stat().st_size // 2), CONFIG))
    docs, bad = _split(items)
    assert [q.reason for q in bad] == ["truncated_gzip"] and items[-1] is bad[0]
    assert 100 < len(docs) < 697
    assert [d.text for d in docs] == [d.text for d in full[: len(docs)]]


def test_jsonl_over_size_cap(data: Path) -> None:
    items = list(read_jsonl(data / "web/redpajama-c4-sample.jsonl", ReaderConfig(max_record_bytes=2000)))
    docs, bad = _split(items)
    assert len(items) == 10 and bad and {q.reason for q in bad} == {"over_size_cap"}
    assert all(len(d.text.encode()) < 2000 for d in docs)


# --- unopenable files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "warc", "wet", "html", "code"])
def test_unopenable_file_raises_naming_it(fmt: str, tmp_path: Path) -> None:
    missing = tmp_path / f"nope.{fmt}"
    with pytest.raises(SourceFileError, match="nope") as err:
        list(get_reader(fmt)(missing, CONFIG))
    assert err.value.path == str(missing)


def test_a_file_that_is_not_a_warc_raises(tmp_path: Path) -> None:
    path = tmp_path / "notes.warc"
    path.write_text("just some notes\n")
    with pytest.raises(SourceFileError, match="not a WARC file"):
        list(read_warc(path, CONFIG))


# --- WARC / WET: real archives ---------------------------------------------------------------------------------


def test_warc_euc_jp_clueweb_pages_decode_to_japanese(data: Path) -> None:
    path = data / "warc/clueweb09-eucjp-quirks.warc.gz"
    docs, bad = _split(list(read_warc(path, CONFIG)))
    assert len(docs) == 29 and bad == []  # warcinfo is not a document and takes no index
    assert [d.record_index for d in docs] == list(range(29))
    for doc in docs:
        assert doc.meta["encoding"] == "euc_jp"
        assert "人気ランキング" in doc.text and "財布" in doc.text and "吉田カバン" in doc.title
        assert not any(bad in doc.text + doc.title for bad in MOJIBAKE)
    first = docs[0]
    assert first.url == "http://www.uraharajuku.st/shopdetail/001005000005/019/000/order/"
    assert first.crawl_date == "2008-10-294T05:21:46-0700"  # invalid, but kept verbatim as provenance
    assert first.warc_record_id == "<urn:uuid:8789ea4e-e914-4ec6-8b7a-ecdd45d340a7>"
    assert first.meta["trec_id"] == "clueweb09-ja0016-50-00000"
    assert first.lang is None


def test_warc_byte_offsets_point_at_the_records(data: Path) -> None:
    path = data / "warc/clueweb09-eucjp-quirks.warc.gz"
    docs, _ = _split(list(read_warc(path, CONFIG)))
    raw = path.read_bytes()
    assert docs[0].byte_offset == 317
    for doc in (docs[0], docs[13], docs[-1]):
        member = gzip.GzipFile(fileobj=io.BytesIO(raw[doc.byte_offset:])).read(400)
        assert member.startswith(b"WARC/0.18\r\nWARC-Type: response")
        assert doc.warc_record_id.encode() in member


def test_warc_common_crawl_chinese_and_legacy_charsets(data: Path) -> None:
    items = list(read_warc(data / "warc/cc-main-2020-34-excerpt.warc.gz", CONFIG))
    docs, bad = _split(items)
    assert len(docs) == 16 and bad == []  # 16 responses among 49 records
    by_host = {d.url.split("/")[2]: d for d in docs}
    gb2312 = by_host["0760.jxtdw.com"]  # HTTP charset=gb2312, decoded as its superset gb18030
    assert gb2312.meta["encoding"] == "gb18030" and "三乡招聘" in gb2312.title and "中山市" in gb2312.text
    gbk_meta = by_host["041696.com"]  # no HTTP charset: <meta charset=gbk>
    assert gbk_meta.meta["encoding"] == "gb18030" and gbk_meta.title == "上海特舟实业有限公司"
    assert by_host["01spb.ru"].meta["encoding"] == "cp1251" and by_host["01spb.ru"].title == "О компании"
    swiss = by_host["06.live-radsport.ch"]  # <meta charset=iso-8859-1>, read as cp1252
    assert swiss.meta["encoding"] == "cp1252" and "Spiel-Übersicht | Zurück" in swiss.text
    assert "Hovenier in Oosterbeek" in by_host["0900-hovenier.nl"].text
    for doc in docs:
        assert not any(bad in doc.text for bad in MOJIBAKE), doc.url
        assert doc.crawl_date.startswith("2020-08-08T") and doc.warc_record_id.startswith("<urn:uuid:")


def test_warc_wget_captures_skip_request_and_resource_records(data: Path) -> None:
    docs0, bad0 = _split(list(read_warc(data / "warc/wget-sample-0000.warc.gz", CONFIG)))
    docs1, bad1 = _split(list(read_warc(data / "warc/wget-sample-0001.warc.gz", CONFIG)))
    assert (len(docs0), len(docs1), bad0 + bad1) == (22, 15, [])
    assert all(d.url.startswith("https://") for d in docs0 + docs1)  # no metadata:// wget.log resource
    soldaini = next(d for d in docs0 if d.url == "https://soldaini.net/")
    assert soldaini.title == "Luca Soldaini" and "My name is Luca Soldaini" in soldaini.text


def test_wet_conversion_record(data: Path) -> None:
    docs, bad = _split(list(read_wet(data / "warc/cc-main-2024-22-one-page.warc.wet.gz", CONFIG)))
    assert len(docs) == 1 and bad == []
    doc = docs[0]
    assert doc.url == "https://an.wikipedia.org/wiki/Escopete" and doc.crawl_date == "2024-05-18T01:58:10Z"
    assert doc.warc_record_id == "<urn:uuid:ba729a40-ff84-4085-8d48-0a5b2ee0c42d>"
    assert doc.byte_offset == 466 and doc.meta["identified_languages"] == "spa"
    assert doc.text.startswith("Escopete - Biquipedia, a enciclopedia libre\n")


def test_warc_truncated_gzip_keeps_earlier_records_and_stops(data: Path, tmp_path: Path) -> None:
    # records start at ..., 90420, 99233, 108064: a cut at 100000 breaks the record at 99233
    src = data / "warc/clueweb09-eucjp-quirks.warc.gz"
    items = list(read_warc(_cut(src, tmp_path / "cut.warc.gz", 100_000), CONFIG))
    docs, bad = _split(items)
    assert len(docs) == 11 and [d.byte_offset for d in docs][-1] == 90420
    assert len(bad) == 1 and items[-1] is bad[0]
    assert (bad[0].reason, bad[0].record_index, bad[0].byte_offset) == ("truncated_gzip", 11, 99233)
    assert bad[0].url == "http://www.uraharajuku.st/shopdetail/001018000044/order/"


# --- WARC: built archives with bad records -------------------------------------------------------------------


def _response(writer: WARCWriter, url: str, content_type: str, body: bytes, status: str = "200 OK") -> None:
    headers = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers))


ARTICLE = (
    b"<html><head><title>Tide tables</title><meta charset='utf-8'></head><body><nav>Home | About</nav>"
    b"<article><h1>Tide tables</h1><p>The harbour of Saint-Malo has some of the largest tides in Europe, "
    b"with a range of up to thirteen metres between low and high water.</p><p>Fishermen plan their days "
    b"around the tide tables, which the harbour master publishes each month.</p></article></body></html>"
)
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 64


def _built_warc(path: Path, gz: bool = True) -> Path:
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gz)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        request = StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.org")], is_http_request=True)
        writer.write_record(writer.create_warc_record("https://example.org/logo.png", "request",
                                                      http_headers=request))
        _response(writer, "https://example.org/logo.png", "image/png", PNG)
        _response(writer, "https://example.org/tides", "text/html; charset=utf-8", ARTICLE)
        _response(writer, "https://example.org/api", "application/json", b'{"a": 1}')
        _response(writer, "https://example.org/gone", "text/html", b"<html>gone</html>", "404 Not Found")
        _response(writer, "https://example.org/empty", "text/html",
                  b"<html><head><script>var a = 1;</script></head><body></body></html>")
    return path


def test_warc_every_response_is_a_document_or_quarantined_with_a_reason(tmp_path: Path) -> None:
    items = list(read_warc(_built_warc(tmp_path / "built.warc.gz"), CONFIG))
    assert [type(i).__name__ for i in items] == ["Quarantined", "Extracted", "Quarantined", "Quarantined",
                                                 "Quarantined"]
    png, page, api, gone, empty = items
    assert (png.reason, png.detail, png.url) == ("non_html_payload", "image/png", "https://example.org/logo.png")
    assert (api.reason, api.detail) == ("non_html_payload", "application/json")
    assert (gone.reason, gone.detail) == ("http_status", "HTTP status 404")
    assert empty.reason == "empty_extraction"
    assert page.title == "Tide tables" and "thirteen metres" in page.text and "Home | About" not in page.text
    assert page.url == "https://example.org/tides" and page.warc_record_id.startswith("<urn:uuid:")
    assert [i.record_index for i in items] == [0, 1, 2, 3, 4]
    assert all(i.byte_offset > 0 for i in items)


def test_warc_payload_over_size_cap(tmp_path: Path) -> None:
    items = list(read_warc(_built_warc(tmp_path / "built.warc.gz"), ReaderConfig(max_record_bytes=300)))
    page = items[1]
    assert isinstance(page, Quarantined) and page.reason == "over_size_cap"
    assert page.url == "https://example.org/tides" and "Tide tables" in page.preview
    assert items[0].reason == "non_html_payload" and items[2].reason == "non_html_payload"


def test_warc_malformed_bytes_mid_file_are_one_item_and_reading_resumes(tmp_path: Path) -> None:
    path = _built_warc(tmp_path / "built.warc", gz=False)
    good = path.read_bytes()
    junk = b"NOT-A-WARC-LINE\r\nfoo: bar\r\n\r\n"
    path.write_bytes(good + junk + good)
    items = list(read_warc(path, CONFIG))
    assert len(items) == 11 and isinstance(items[1], Extracted) and isinstance(items[7], Extracted)
    damaged = items[5]
    assert (damaged.reason, damaged.record_index, damaged.byte_offset) == ("malformed_warc_record", 5, len(good))
    assert damaged.detail.endswith(f"bytes {len(good)}..{len(good) + len(junk) - 1} skipped")
    assert [i.record_index for i in items] == list(range(11))
    assert [i.byte_offset - len(good + junk) for i in items[6:]] == [i.byte_offset for i in items[:5]]
    assert items[7].text == items[1].text


def _real_responses(path: Path, count: int) -> list[tuple[StatusAndHeaders, StatusAndHeaders, bytes]]:
    """The first ``count`` response records of a real archive: WARC headers, HTTP headers, payload."""
    found = []
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "response" and len(found) < count:
                found.append((record.rec_headers, record.http_headers, record.content_stream().read()))
    return found


def test_warc_response_without_id_and_uri_is_quarantined_and_reading_goes_on(data: Path, tmp_path: Path) -> None:
    """Issue 14: the second record, a response without WARC-Record-ID and WARC-Target-URI, made
    warcio raise AttributeError ('NoneType' object has no attribute 'startswith') and l0_raw fail."""
    path = tmp_path / "headless.warc.gz"
    responses = _real_responses(data / "warc/cc-main-2020-34-excerpt.warc.gz", 3)
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for n, (warc_headers, http_headers, body) in enumerate(responses):
            if n == 1:
                warc_headers.remove_header("WARC-Record-ID")
                warc_headers.remove_header("WARC-Target-URI")
            writer.write_record(writer.create_warc_record(
                warc_headers.get_header("WARC-Target-URI"), "response", payload=io.BytesIO(body),
                http_headers=http_headers, warc_headers=warc_headers))
    assert b"WARC-Record-ID" not in gzip.decompress(path.read_bytes()).split(b"WARC/1.0")[2]
    items = list(read_warc(path, CONFIG))
    assert [type(i).__name__ for i in items] == ["Extracted", "Quarantined", "Extracted"]
    headless = items[1]
    assert (headless.reason, headless.record_index) == ("missing_warc_header", 1)
    assert headless.detail == "no WARC-Record-ID, WARC-Target-URI" and headless.byte_offset > items[0].byte_offset
    assert [i.url for i in (items[0], items[2])] == [r[0].get_header("WARC-Target-URI") for r in responses[::2]]


# --- HTML ------------------------------------------------------------------------------------------------------


def test_decode_maps_legacy_charsets_to_supersets() -> None:
    assert decode_html_bytes("朱镕基".encode("gbk"), "gb2312") == ("朱镕基", "gb18030")  # 镕 is not in GB2312
    assert decode_html_bytes("①髙".encode("cp932"), "Shift_JIS") == ("①髙", "cp932")  # NEC/IBM extensions
    assert decode_html_bytes("“quoted”".encode("cp1252"), "ISO-8859-1") == ("“quoted”", "cp1252")
    assert decode_html_bytes("日本語".encode("euc-jp"), "x-euc-jp") == ("日本語", "euc_jp")


def test_decode_uses_meta_then_detection_and_trusts_valid_utf8() -> None:
    page = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=EUC-JP"></head>'
    assert decode_html_bytes((page + "東京").encode("euc-jp"), None)[1] == "euc_jp"
    assert decode_html_bytes("<p>café</p>".encode(), "iso-8859-1") == ("<p>café</p>", "utf-8")  # not 'cafÃ©'
    russian = "<p>Съешь же ещё этих мягких французских булок, да выпей чаю.</p>" * 5
    text, _ = decode_html_bytes(russian.encode("cp1251"), None)  # undeclared: charset-normalizer
    assert text == russian


def test_decode_repairs_truncation_and_rejects_binary() -> None:
    assert decode_html_bytes("日本語".encode("euc-jp")[:-1], "euc-jp") == ("日本", "euc_jp")  # cut payload
    stray = ("<p>" + "café " * 300).encode() + b"\xff" + "naïve</p>".encode()  # one bad byte, declared UTF-8
    text, encoding = decode_html_bytes(stray, "utf-8")
    assert encoding == "utf-8+replace" and text.count("\ufffd") == 1 and text.endswith("\ufffdnaïve</p>")
    with pytest.raises(EncodingError, match="no charset decodes"):
        decode_html_bytes(PNG + bytes(range(128, 256)) * 8, None)


def test_extract_main_text_on_a_benchmark_article(data: Path) -> None:
    root = data / "html/article-extraction-benchmark"
    gold = json.loads((root / "ground-truth.json").read_text())
    sha = "042bb7b5fedab6eac7db576522b89b93904c237d344bcbe14a6a5ab7f7335856"
    html, _ = decode_html_bytes(gzip.decompress((root / "html" / f"{sha}.html.gz").read_bytes()), None)
    title, text = extract_main_text(html, gold[sha]["url"])
    assert "Gaming used to be so simple." in text[:500]
    assert title == "Google Stadia, Microsoft xCloud, Apple Arcade: So Many Ways to Play…and Pay"
    gold_words, words = set(gold[sha]["articleBody"].lower().split()), set(text.lower().split())
    assert len(gold_words & words) / len(gold_words) > 0.9


def test_read_html_gz_file_and_chinese_page(data: Path) -> None:
    sha = "042bb7b5fedab6eac7db576522b89b93904c237d344bcbe14a6a5ab7f7335856"
    (doc,) = read_html(data / "html/article-extraction-benchmark/html" / f"{sha}.html.gz", CONFIG)
    assert isinstance(doc, Extracted) and "Gaming used to be so simple." in doc.text[:500]
    assert (doc.record_index, doc.byte_offset, doc.meta["encoding"]) == (0, 0, "utf-8")
    zh_root = data / "html/magic-html-zh/article"
    zh_gold = json.loads((zh_root / "base.json").read_text())
    page = sorted(zh_root.glob("htmls/*.html"))[0]
    (zh,) = read_html(page, CONFIG)
    assert isinstance(zh, Extracted) and "\ufffd" not in zh.text
    gold_chars = {c for c in zh_gold[page.stem]["content"] if "\u4e00" <= c <= "\u9fff"}
    assert len(gold_chars & set(zh.text)) / len(gold_chars) > 0.9


def test_read_html_bad_inputs(data: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"<html><head><script>var a = 1;</script></head><body><div></div></body></html>")
    assert [(i.reason, i.record_index) for i in read_html(empty, CONFIG)] == [("empty_extraction", 0)]
    src = next((data / "html/article-extraction-benchmark/html").glob("*.html.gz"))
    (cut,) = read_html(_cut(src, tmp_path / "cut.html.gz", src.stat().st_size // 2), CONFIG)
    assert cut.reason == "truncated_gzip"
    (big,) = read_html(src, ReaderConfig(max_record_bytes=1000))
    assert big.reason == "over_size_cap" and big.preview
    binary = tmp_path / "binary.html"
    binary.write_bytes(PNG + bytes(range(128, 256)) * 8)
    assert [i.reason for i in read_html(binary, CONFIG)] == ["invalid_encoding"]


# --- code --------------------------------------------------------------------------------------------------------


def test_language_of_and_format_inference() -> None:
    assert [language_of(Path(p)) for p in ("a.py", "b.H", "c.rs", "d.tsx", "e.md", "Makefile", "f.txt")] == [
        "python", "c", "rust", "typescript", None, None, None]
    assert (infer_format("x/y.go"), infer_format("notes.md")) == ("code", None)


def test_iter_code_tree_is_sorted_and_skips_junk(tmp_path: Path) -> None:
    for rel in ("pkg/b.py", "pkg/a.py", "pkg/sub/c.go", "pkg/__pycache__/a.py", ".git/hooks/x.py",
                "node_modules/m/index.js", "web/app.js", "README.md", "setup.py", "data.csv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    rel = [p.relative_to(tmp_path).as_posix() for p in iter_code_tree(tmp_path)]
    assert rel == ["pkg/a.py", "pkg/b.py", "pkg/sub/c.go", "setup.py", "web/app.js"]
    only_py = [p.relative_to(tmp_path).as_posix() for p in iter_code_tree(tmp_path, ["**/*.py"])]
    assert only_py == ["pkg/a.py", "pkg/b.py", "setup.py"]
    assert [p.name for p in iter_code_tree(tmp_path, ["pkg/sub/*"])] == ["c.go"]


def test_read_code_file_on_the_stdlib() -> None:
    json_pkg = Path(sysconfig.get_paths()["stdlib"]) / "json"
    files = list(iter_code_tree(json_pkg))
    assert [p.name for p in files] == ["__init__.py", "decoder.py", "encoder.py", "scanner.py", "tool.py"]
    (doc,) = read_code_file(json_pkg / "decoder.py", CONFIG)
    assert isinstance(doc, Extracted) and "class JSONDecoder" in doc.text
    assert doc.meta == {"language": "python"} and doc.lang is None


def test_read_code_file_bad_inputs(tmp_path: Path) -> None:
    cases = {
        "binary.c": b"int main() { return 0; }\x00\x01\x02",
        "latin1.py": b"# caf\xe9\nx = 1\n",
        "big.js": b"// " + b"x" * 200 + b"\n",
        "notes.txt": b"plain text",
    }
    reasons = {}
    for name, body in cases.items():
        (tmp_path / name).write_bytes(body)
        (item,) = read_code_file(tmp_path / name, ReaderConfig(max_code_file_bytes=100))
        reasons[name] = item.reason
    assert reasons == {"binary.c": "binary_content", "latin1.py": "invalid_utf8", "big.js": "over_size_cap",
                       "notes.txt": "unknown_language"}


# --- Parquet -----------------------------------------------------------------------------------------------------


def test_parquet_matches_jsonl_field_conventions(data: Path, tmp_path: Path) -> None:
    src = data / "web/cc-main-2019-30-dolma.jsonl.gz"
    rows = [json.loads(line) for line in gzip.decompress(src.read_bytes()).splitlines()]
    path = tmp_path / "dolma.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=200)
    from_jsonl, _ = _split(list(read_jsonl(src, CONFIG)))
    items = list(read_parquet(path, CONFIG))
    docs, bad = _split(items)
    assert len(docs) == 697 and bad == []
    assert [d.record_index for d in docs] == list(range(697)) and {d.byte_offset for d in docs} == {None}
    for a, b in zip(docs, from_jsonl, strict=True):
        assert (a.text, a.source_doc_id, a.url, a.crawl_date) == (b.text, b.source_doc_id, b.url, b.crawl_date)


def test_parquet_missing_text_and_damaged_row_group(tmp_path: Path) -> None:
    texts = [f"document number {i} " * 10 for i in range(3000)]
    texts[7] = None
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"text": texts, "meta": [{"url": f"https://x.org/{i}"} for i in range(3000)]}),
                   path, row_group_size=1000, compression="none")
    items = list(read_parquet(path, CONFIG))
    assert len(items) == 3000 and items[7].reason == "missing_text" and items[8].url == "https://x.org/8"
    damaged = bytearray(path.read_bytes())
    page = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    damaged[page:page + 64] = b"\xff" * 64
    path.write_bytes(bytes(damaged))
    items = list(read_parquet(path, CONFIG))
    assert len(items) == 2001  # row group 1 lost as one item, row groups 0 and 2 intact
    assert (items[1000].reason, items[1000].record_index) == ("corrupt_parquet", 1000)
    assert "rows 1000..1999 lost" in items[1000].detail
    assert items[1001].record_index == 2000 and items[1001].text.startswith("document number 2000 ")
