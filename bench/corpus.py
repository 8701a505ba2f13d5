"""Build large, realistic benchmark corpora (100k+ documents) from the real documents in shared/data.

A synthetic document strings together runs of 1-3 consecutive paragraphs (lines;
long lines cut at sentence ends) from at least three real documents, until it
reaches the length of a real document drawn at random: real text, real noise, real
length distribution, but never a copy of a whole document (which dedup would
remove, making any benchmark of it meaningless). The real pool is small (about 700
English documents: web text, news articles' gold text, the quality dev set), so
paragraphs recur and a few percent of the synthetic documents are near-duplicates
of each other, as in a real crawl. Output is Dolma-format JSONL(.gz),
byte-identical for a seed.

    python bench/corpus.py --docs 100000 --out /tmp/en-100k.jsonl.gz [--seed 0] [--domain en]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DOMAINS = ("en", "zh", "math")
ADDED = "2026-01-01T00:00:00.000Z"  # fixed, so that output is byte-identical for a seed
MAX_RUN = 3  # paragraphs per run from one source document
MAX_UNIT = 600  # characters: longer lines are cut into sentence groups
MIN_SOURCES = 3  # distinct source documents per synthetic one
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Source:
    """One real document: where it came from and its non-empty lines."""

    ref: str
    url: str | None
    paragraphs: tuple[str, ...]

    @property
    def length(self) -> int:
        return sum(len(p) + 1 for p in self.paragraphs)


def _read_jsonl(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _lang(text: str) -> str:
    import py3langid

    return py3langid.classify(text[:2000])[0]


def _units(line: str) -> list[str]:
    """A line cut into pieces of at most ``MAX_UNIT`` characters at sentence ends (else at spaces).

    Without this one long line (a patent claim, a grant abstract) dominates every
    document it lands in, and random documents turn out near-duplicates of each other.
    """
    if len(line) <= MAX_UNIT:
        return [line]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(line):
        while len(sentence) > MAX_UNIT:
            cut = sentence.rfind(" ", 0, MAX_UNIT)
            cut = cut if cut > 0 else MAX_UNIT
            pieces.append(sentence[:cut])
            sentence = sentence[cut:].lstrip()
        if current and len(current) + len(sentence) + 1 > MAX_UNIT:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    return pieces


def _source(ref: str, text: str, url: str | None) -> Source | None:
    paragraphs = tuple(u for line in text.split("\n") if line.strip() for u in _units(line.strip()))
    return Source(ref, url, paragraphs) if paragraphs else None


def _candidates(domain: str) -> Iterator[tuple[str, str, str | None]]:
    """(ref, text, url) of every real document that can feed ``domain``."""
    if domain in ("en", "zh"):
        for path in sorted((DATA / "web").glob("*.jsonl*")):
            for i, rec in enumerate(_read_jsonl(path)):
                yield f"{path.name}#{i}", rec["text"], (rec.get("metadata") or {}).get("url")
    if domain == "en":
        truth = DATA / "html" / "article-extraction-benchmark" / "ground-truth.json"
        articles = json.loads(truth.read_text(encoding="utf-8"))
        for key in sorted(articles):
            yield f"{truth.parent.name}#{key[:12]}", articles[key]["articleBody"], articles[key].get("url")
        path = DATA / "quality-dev" / "dclm-human-quality-dev.jsonl"
        for i, rec in enumerate(_read_jsonl(path)):
            yield f"{path.name}#{i}", rec["text"], None
    if domain == "zh":
        for path in sorted((DATA / "html" / "magic-html-zh").glob("*/base.json")):
            pages = json.loads(path.read_text(encoding="utf-8"))
            for key in sorted(pages):
                yield f"{path.parent.name}/base.json#{key[:12]}", pages[key]["content"], pages[key].get("url")
    if domain == "math":
        for path in sorted((DATA / "math").glob("*.jsonl")):
            for i, rec in enumerate(_read_jsonl(path)):
                yield f"{path.name}#{i}", rec["text"], None


@cache
def load_sources(domain: str = "en") -> tuple[Source, ...]:
    """The real documents of ``domain`` (web text filtered by language id for en / zh)."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    sources = []
    for ref, text, url in _candidates(domain):
        if domain in ("en", "zh") and _lang(text) != domain:
            continue
        source = _source(ref, text, url)
        if source is not None:
            sources.append(source)
    if len(sources) < MIN_SOURCES:
        raise RuntimeError(f"too few real {domain} documents under {DATA}")
    return tuple(sources)


def _run(rng: random.Random, source: Source) -> tuple[str, str]:
    """A run of consecutive paragraphs of ``source`` and its reference (``ref:start-end``)."""
    n = len(source.paragraphs)
    size = rng.randint(1, min(MAX_RUN, n))
    start = rng.randrange(n - size + 1)
    text = "\n".join(source.paragraphs[start:start + size])
    return text, f"{source.ref}:{start}-{start + size}"


def build_corpus(n: int, seed: int = 0, domain: str = "en") -> Iterator[dict]:
    """``n`` Dolma-format documents ``{id, text, source, added, metadata{url, parts}}``, deterministic in ``seed``."""
    sources = load_sources(domain)
    rng = random.Random(f"{domain}:{seed}")
    for i in range(n):
        target = min(max(rng.choice(sources).length, 300), 30_000)
        runs: list[str] = []
        parts: list[str] = []
        used: list[int] = []
        length = 0
        while length < target or len(used) < MIN_SOURCES:
            k = rng.randrange(len(sources))
            if k in used and len(used) < len(sources):
                continue
            used.append(k)
            text, ref = _run(rng, sources[k])
            runs.append(text)
            parts.append(ref)
            length += len(text) + 2
        yield {
            "id": f"bench-{domain}-{seed}-{i:08d}",
            "text": "\n\n".join(runs),
            "source": f"tier_assets-bench/{domain}",
            "added": ADDED,
            "metadata": {"url": sources[used[0]].url, "parts": parts},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, required=True, help="number of documents")
    parser.add_argument("--out", type=Path, required=True, help="output .jsonl or .jsonl.gz")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--domain", choices=DOMAINS, default="en")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    chars = 0
    with open(args.out, "wb") as raw:
        # mtime=0 and no file name in the gzip header: the same seed gives the same bytes
        binary = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0, filename="") \
            if args.out.suffix == ".gz" else raw
        with io.TextIOWrapper(binary, encoding="utf-8") as fh:
            for doc in build_corpus(args.docs, args.seed, args.domain):
                chars += len(doc["text"])
                fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"wrote {args.docs} {args.domain} documents ({chars / max(args.docs, 1):.0f} chars on average) "
          f"to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
