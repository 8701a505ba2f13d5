"""HTML: charset decoding with repair, main-text extraction, and a reader for standalone pages.

``decode_html_bytes`` is shared with the WARC reader so that a page decodes the same
way whether it comes from a crawl archive or from a file. Extraction is trafilatura's
default: token F1 0.948 on the article-extraction benchmark (``bench/html_extraction.py``).
``include_comments=False`` scores 0.959 there but drops forum posts (0.670 -> 0.577 on
the Chinese forum pages); L0 keeps the recall, since later tiers can drop text but
cannot bring it back.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import trafilatura
from charset_normalizer import from_bytes
from trafilatura.metadata import extract_title

from tier_assets.curation.readers.base import Extracted, Quarantined, ReaderConfig, ReadItem, preview
from tier_assets.curation.readers.jsonl import GZIP_ERRORS, gzip_damage, open_maybe_gzip
from tier_assets.curation.readers.math_html import has_math_markup, latex_in_place


class EncodingError(ValueError):
    """Bytes that no declared or detected charset decodes (the caller quarantines: invalid_encoding)."""


# Legacy labels -> codecs to try, superset first: pages labelled with the narrow
# standard charset routinely use vendor extensions (the WHATWG Encoding Standard maps
# them the same way), and ISO-8859-1 pages are cp1252 in practice.
_LATIN1 = ("cp1252", "latin_1")
_ALIASES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("gb2312", "gb-2312", "gbk", "x-gbk", "csgb2312", "gb-2312-80", "euc-cn", "chinese", "cp936",
         "ms936", "windows-936", "iso-ir-58"),
        ("gb18030",),
    ),
    **dict.fromkeys(
        ("shift-jis", "sjis", "x-sjis", "s-jis", "ms-kanji", "csshiftjis", "windows-31j",
         "cp932", "ms932"),
        ("cp932", "shift_jis_2004"),
    ),
    **dict.fromkeys(("euc-jp", "x-euc-jp", "eucjp", "cseucpkdfmtjapanese"), ("euc_jp", "euc_jis_2004")),
    **dict.fromkeys(("iso-2022-jp", "csiso2022jp"), ("iso2022_jp_2", "iso2022_jp_ext")),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "x-x-big5", "csbig5"), ("big5hkscs", "cp950")),
    **dict.fromkeys(
        ("euc-kr", "ks-c-5601-1987", "ks-c-5601-1989", "ksc5601", "ksc-5601", "korean", "windows-949",
         "cseuckr", "iso-ir-149"),
        ("cp949",),
    ),
    **dict.fromkeys(
        ("iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "us-ascii", "ascii", "cp819", "ibm819",
         "csisolatin1", "iso-ir-100", "windows-1252"),
        _LATIN1,
    ),
    **dict.fromkeys(("iso-8859-9", "iso8859-9", "latin5", "l5", "windows-1254"), ("cp1254", "iso8859_9")),
    **dict.fromkeys(("tis-620", "iso-8859-11", "windows-874", "dos-874"), ("cp874",)),
}

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META_SCAN_BYTES = 8192  # longer than the WHATWG 1024-byte prescan: real heads put scripts first
_META_CHARSET = re.compile(rb"<meta\s[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]+)", re.I)
_XML_ENCODING = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_.:\-]+)", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]+)", re.I)
_MAX_REPLACED_SHARE = 0.001  # a declared charset with at most this share of bad bytes is kept (repaired)


def header_charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of an HTTP Content-Type value, if any."""
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def _meta_charset(body: bytes) -> str | None:
    """The charset a page declares in ``<meta charset>``, ``<meta http-equiv>`` or its XML prolog."""
    head = body[:_META_SCAN_BYTES]
    match = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    return match.group(1).decode("ascii") if match else None


def _bom_codec(body: bytes) -> str | None:
    return next((codec for bom, codec in _BOMS if body.startswith(bom)), None)


def _codecs_for(label: str) -> tuple[str, ...]:
    """Python codecs to try for a charset label, legacy labels mapped to their supersets."""
    key = label.strip().strip("\"'").lower().replace("_", "-")
    return _ALIASES.get(key, (key,))


def _strict_decode(body: bytes, codec: str) -> str | None:
    """Decode, failing on any invalid byte; a multibyte character cut off at the very end
    (crawlers truncate payloads) is dropped rather than counted as an error."""
    try:
        return codecs.getincrementaldecoder(codec)(errors="strict").decode(body, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def _candidate_labels(body: bytes, declared: list[str]) -> list[str]:
    """Labels to verify, most trusted first: BOM, then UTF-8 when the body has non-ASCII
    bytes (legacy multibyte text practically never validates as UTF-8, so a page that does
    is UTF-8 whatever it declares), then the declarations, then UTF-8 for pure ASCII."""
    labels = [label for label in (_bom_codec(body),) if label]
    if not body.isascii():
        labels.append("utf-8")
    return list(dict.fromkeys([*labels, *declared, "utf-8"]))


def _first_decoding(body: bytes, labels: list[str]) -> tuple[str, str] | None:
    for label in labels:
        for codec in _codecs_for(label):
            text = _strict_decode(body, codec)
            if text is not None:
                return text, codecs.lookup(codec).name
    return None


def _lossy_decode(body: bytes, declared: list[str]) -> tuple[str, str] | None:
    """Repair: a declared charset that fails on only a few stray bytes is still right for the
    rest of the page (detection would turn all of its non-ASCII text into mojibake), so it is
    kept with the stray bytes as U+FFFD."""
    for label in declared:
        for codec in _codecs_for(label):
            try:
                text = body.decode(codec, errors="replace")
            except LookupError:
                continue
            if text.count("\ufffd") <= max(1, len(body) * _MAX_REPLACED_SHARE):
                return text, f"{codecs.lookup(codec).name}+replace"
    return None


def _detected(body: bytes) -> tuple[str, str] | None:
    best = from_bytes(body).best()
    return _first_decoding(body, [best.encoding]) if best is not None else None


def decode_html_bytes(body: bytes, header_charset: str | None) -> tuple[str, str]:
    """Decode an HTML payload to text, returning ``(text, codec name)``.

    Candidates (BOM, UTF-8, HTTP charset, in-page charset) are each verified by a strict
    decode; failing that, a declared charset with a few bad bytes replaced; then
    charset-normalizer's detection, verified the same way. Raises ``EncodingError`` when
    nothing decodes.
    """
    declared = [label for label in (header_charset, _meta_charset(body)) if label]
    labels = _candidate_labels(body, declared)
    result = _first_decoding(body, labels) or _lossy_decode(body, declared) or _detected(body)
    if result is None:
        raise EncodingError(f"no charset decodes the payload (tried {', '.join(labels)} and detection)")
    return result


def extract_main_text(html: str, url: str | None) -> tuple[str | None, str]:
    """Main text and title of a page: ``(title or None, text or "")``.

    The tree is parsed once and shared by the title lookup and trafilatura, so the title
    costs no second parse. Math markup (MathJax, KaTeX, MathML, LaTeX images) becomes LaTeX
    text first (``readers/math_html.py``), since trafilatura would drop or garble it.
    """
    tree = trafilatura.load_html(html)
    if tree is None:
        return None, ""
    title = extract_title(tree)
    if has_math_markup(html):
        latex_in_place(tree)
    text = trafilatura.extract(tree, url=url) or ""
    return title, text


class Page(NamedTuple):
    """A decoded page's extraction result."""

    title: str | None
    text: str
    encoding: str


class Rejection(NamedTuple):
    """Why a page cannot be a document; the caller adds its own provenance to the Quarantined."""

    reason: str
    detail: str
    preview: str


def html_page(body: bytes, declared_charset: str | None, url: str | None, config: ReaderConfig) -> Page | Rejection:
    """Decode and extract one page, or say why it cannot become a document."""
    try:
        html, encoding = decode_html_bytes(body, declared_charset)
    except EncodingError as exc:
        return Rejection("invalid_encoding", str(exc), preview(body))
    try:
        title, text = extract_main_text(html, url)
    except Exception as exc:  # one odd page must not abort a whole archive: it is quarantined instead
        return Rejection("extraction_error", f"{type(exc).__name__}: {exc}", preview(html))
    if len(text.strip()) < config.min_html_chars:
        return Rejection("empty_extraction", f"main text under {config.min_html_chars} chars", preview(html))
    return Page(title, text, encoding)


def read_html(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield the one document of a standalone ``.html`` / ``.html.gz`` page."""
    with open_maybe_gzip(path) as fh:
        try:
            body = fh.read(config.max_record_bytes + 1)
        except GZIP_ERRORS as exc:
            yield Quarantined(0, *gzip_damage(exc), "", 0)
            return
    if len(body) > config.max_record_bytes:
        yield Quarantined(0, "over_size_cap", f"page is over {config.max_record_bytes} bytes", preview(body), 0)
        return
    page = html_page(body, None, None, config)
    if isinstance(page, Rejection):
        yield Quarantined(0, page.reason, page.detail, page.preview, 0)
    else:
        yield Extracted(text=page.text, record_index=0, byte_offset=0, title=page.title,
                        meta={"encoding": page.encoding})
