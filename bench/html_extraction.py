"""HTML main-text extraction: quality against gold text, and our overhead over trafilatura.

1. Quality: mean token F1 (bag of lower-cased words; CJK text one token per character)
   of ``extract_main_text`` against the gold main text of the article-extraction
   benchmark (181 English pages) and of magic-html's Chinese article and forum pages.
   trafilatura with ``include_comments=False`` is scored too, as the alternative setting.
2. Speed: ``extract_main_text`` vs ``trafilatura.extract`` on the same decoded pages,
   interleaved rounds; the overhead is taken on CPU time, which other jobs on shared
   cores disturb less than wall time.
3. Archives: ``read_warc`` (decode + extract + provenance) vs warcio + ``trafilatura.extract``
   on the raw payload, over the real WARC files.

    python bench/html_extraction.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from statistics import mean
from typing import Any

import trafilatura
from _util import SHARED, save, table
from warcio.archiveiterator import ArchiveIterator

from tier_assets.curation.readers.base import ReaderConfig
from tier_assets.curation.readers.html import decode_html_bytes, extract_main_text
from tier_assets.curation.readers.warc import read_warc

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
ARTICLES = SHARED / "html/article-extraction-benchmark"
MAGIC_ZH = SHARED / "html/magic-html-zh"
WARCS = sorted((SHARED / "warc").glob("*.warc.gz"))

Page = tuple[str, str, str]  # (decoded html, url, gold text)


def tokens(text: str) -> Counter[str]:
    return Counter(_TOKEN.findall(text.lower()))


def token_f1(predicted: str, gold: str) -> float:
    """Bag-of-tokens F1, the measure the article-extraction benchmark reports."""
    p, g = tokens(predicted), tokens(gold)
    overlap = sum((p & g).values())
    if not overlap:
        return float(not p and not g)
    precision, recall = overlap / sum(p.values()), overlap / sum(g.values())
    return 2 * precision * recall / (precision + recall)


def article_pages() -> list[Page]:
    gold = json.loads((ARTICLES / "ground-truth.json").read_text())
    return [
        (decode_html_bytes(gzip.decompress((ARTICLES / "html" / f"{sha}.html.gz").read_bytes()), None)[0],
         entry["url"], entry["articleBody"])
        for sha, entry in sorted(gold.items())
    ]


def magic_pages(kind: str) -> list[Page]:
    """The Chinese pages of a magic-html set: the gold also lists English pages without HTML."""
    root = MAGIC_ZH / kind
    gold = json.loads((root / "base.json").read_text())
    return [
        (decode_html_bytes((root / "htmls" / f"{sha}.html").read_bytes(), None)[0], entry["url"], entry["content"])
        for sha, entry in sorted(gold.items())
        if (root / "htmls" / f"{sha}.html").exists()
    ]


def ours(html: str, url: str) -> str:
    return extract_main_text(html, url)[1]


def no_comments(html: str, url: str) -> str:
    return trafilatura.extract(html, url=url, include_comments=False) or ""


def quality(sets: dict[str, list[Page]]) -> list[dict[str, Any]]:
    rows = []
    for name, pages in sets.items():
        row: dict[str, Any] = {"set": name, "pages": len(pages)}
        for label, fn in (("f1_ours", ours), ("f1_trafilatura_no_comments", no_comments)):
            row[label] = round(mean(token_f1(fn(html, url), gold) for html, url, gold in pages), 4)
        rows.append(row)
    return rows


def race(contenders: dict[str, Callable[[], int]], rounds: int) -> dict[str, dict[str, float]]:
    """Run each contender once per round, alternating so load changes hit both, and total
    wall and CPU seconds; a contender returns how many pages it processed."""
    totals = {name: {"pages": 0, "wall_s": 0.0, "cpu_s": 0.0} for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            totals[name]["pages"] += run()
            totals[name]["wall_s"] += time.perf_counter() - wall
            totals[name]["cpu_s"] += time.process_time() - cpu
    for t in totals.values():
        t["pages_per_s_wall"] = t["pages"] / t["wall_s"]
        t["pages_per_s_cpu"] = t["pages"] / t["cpu_s"]
    return totals


def extraction_speed(pages: list[Page], rounds: int) -> dict[str, dict[str, float]]:
    def run_ours() -> int:
        return len([extract_main_text(html, url) for html, url, _ in pages])

    def run_direct() -> int:
        return len([trafilatura.extract(html, url=url) for html, url, _ in pages])

    return race({"extract_main_text": run_ours, "trafilatura.extract": run_direct}, rounds)


def _warcio_pages(path: Path) -> Iterator[tuple[bytes, str]]:
    """The HTML response payloads of a WARC file, undecoded: trafilatura guesses the charset itself."""
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "response" and "html" in (record.http_headers.get_header("Content-Type") or ""):
                yield record.content_stream().read(), record.rec_headers.get_header("WARC-Target-URI")


def warc_speed(rounds: int) -> dict[str, dict[str, float]]:
    config = ReaderConfig()

    def run_ours() -> int:
        return len([item for path in WARCS for item in read_warc(path, config)])

    def run_direct() -> int:
        return len([trafilatura.extract(body, url=url) for path in WARCS for body, url in _warcio_pages(path)])

    return race({"read_warc": run_ours, "warcio+trafilatura": run_direct}, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per contender")
    args = parser.parse_args()
    logging.getLogger("trafilatura").setLevel(logging.ERROR)  # "discarding data" warnings on empty pages

    articles = article_pages()
    sets = {"article-benchmark (en)": articles, "magic-html zh article": magic_pages("article"),
            "magic-html zh forum": magic_pages("forum")}
    quality_rows = quality(sets)
    shown = [{k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()} for row in quality_rows]
    print("1. extraction quality (mean token F1)\n" + table(shown) + "\n")

    speed = extraction_speed(articles, args.rounds)
    overhead = speed["extract_main_text"]["cpu_s"] / speed["trafilatura.extract"]["cpu_s"] - 1
    print(f"2. extraction speed, {len(articles)} pages x {args.rounds} rounds")
    print(table([{"extractor": k, **{m: round(v, 2) for m, v in t.items()}} for k, t in speed.items()]))
    print(f"overhead of extract_main_text over trafilatura.extract (CPU time): {overhead:+.1%}\n")

    archives = warc_speed(args.rounds)
    print(f"3. WARC + extraction over {len(WARCS)} real WARC files x {args.rounds} rounds")
    print(table([{"reader": k, **{m: round(v, 2) for m, v in t.items()}} for k, t in archives.items()]))

    save("html_extraction", {
        "quality": quality_rows,
        "extraction_speed": speed,
        "extraction_overhead_cpu": round(overhead, 4),
        "warc_speed": archives,
        "warc_files": [p.name for p in WARCS],
        "rounds": args.rounds,
    })


if __name__ == "__main__":
    main()
