"""Reference text (Wikipedia, news articles, papers, Q&A) as extra seeds for distillation.

GPT-3's and DCLM's quality classifiers learned "good" from curated reference
text. Here reference documents join the sampled L1 seeds and are annotated like
them (measured on quality-dev: annotated references help the distilled
classifier, forcing them to the top label hurts it), so the seed set spans the
high-quality end that a small random sample of web text rarely reaches. Long
documents are cut at paragraph boundaries into web-page-sized chunks.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from tier_assets.curation.schema import stable_id


def chunk_paragraphs(text: str, chunk_chars: int = 1500) -> list[str]:
    """Consecutive paragraphs joined until each chunk reaches ``chunk_chars``; a short tail is dropped."""
    chunks, current = [], ""
    for para in (p.strip() for p in text.split("\n")):
        if not para:
            continue
        current = f"{current}\n{para}" if current else para
        if len(current) >= chunk_chars:
            chunks.append(current)
            current = ""
    if len(current) >= chunk_chars // 2 or not chunks and current:
        chunks.append(current)
    return chunks


def read_texts(path: Path) -> Iterator[str]:
    """Texts of one file: HTML (main text via trafilatura), JSONL with ``text``, or plain text."""
    name = path.name.removesuffix(".gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        if name.endswith((".html", ".htm")):
            import trafilatura

            text = trafilatura.extract(f.read())
            if text:
                yield text
        elif name.endswith(".jsonl"):
            for line in f:
                if line.strip():
                    text = json.loads(line).get("text")
                    if isinstance(text, str) and text.strip():
                        yield text
        else:
            yield f.read()


def reference_documents(paths: list[str | Path], chunk_chars: int = 1500, min_chars: int = 200,
                        max_chunks_per_doc: int | None = None) -> list[dict[str, str]]:
    """``{doc_id, text, source}`` chunks of the reference files, ids stable across runs."""
    docs = []
    for path in map(Path, paths):
        for i, text in enumerate(read_texts(path)):
            chunks = [c for c in chunk_paragraphs(text, chunk_chars) if len(c) >= min_chars]
            for j, chunk in enumerate(chunks[:max_chunks_per_doc]):
                docs.append({"doc_id": stable_id("reference", path.name, i, j), "text": chunk,
                             "source": path.name})
    return docs
