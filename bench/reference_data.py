"""Build the bundled L2 reference text (``tier_assets/reference_data/``) from ../shared/data.

Reference documents are positives by provenance (as in GPT-3's and DCLM's
quality classifiers): curated text that a small random web sample rarely
reaches. The same selection as ``bench/l2_scoring.py`` uses, written once so the
L2 classifier asset needs no shared data at run time:

- en: 5 full Wikipedia pages (DCLM), Pile NIH grant abstracts and USPTO patents,
  arXiv LaTeX, English Stack Exchange posts, and 60 news/blog article bodies from
  the article-extraction benchmark's gold text; English only (py3langid), chunked
  at paragraph boundaries into web-page-sized pieces (at most 8 per document).
- math: the arXiv LaTeX sample, chunked the same way.

    .venv/bin/python bench/reference_data.py
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tier_assets.curation.l2.reference import reference_documents  # noqa: E402
from tier_assets.curation.schema import stable_id  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "tier_assets" / "reference_data"
EN_FILES = ([f"html/dclm-pages/wikipedia_paragraph{i}.html" for i in range(1, 6)]
            + ["web/pile-nih-sample.jsonl", "web/pile-uspto-sample.jsonl", "math/arxiv-latex-sample.jsonl",
               "math/stackexchange-sample-a.jsonl", "math/stackexchange-sample-b.jsonl"])
MATH_FILES = ["math/arxiv-latex-sample.jsonl"]


def english(docs: list[dict]) -> list[dict]:
    import py3langid

    return [d for d in docs if py3langid.classify(d["text"][:2000])[0] == "en"]


def articles(limit: int = 60) -> list[dict]:
    gt = json.loads((DATA / "html/article-extraction-benchmark/ground-truth.json").read_text())
    return [{"doc_id": stable_id("reference", "article", k), "text": v["articleBody"],
             "source": f"article-extraction-benchmark:{v.get('url', k)}"}
            for k, v in sorted(gt.items()) if len(v.get("articleBody") or "") >= 200][:limit]


def write(name: str, docs: list[dict]) -> None:
    path = OUT / name
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        for d in docs:
            f.write(json.dumps({"text": d["text"], "source": d["source"]}, ensure_ascii=False) + "\n")
    print(f"{path.relative_to(ROOT)}: {len(docs)} chunks, {path.stat().st_size / 1024:.0f} KiB")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    en = english(reference_documents([DATA / p for p in EN_FILES], max_chunks_per_doc=8) + articles())
    write("en-reference.jsonl.gz", en)
    write("math-reference.jsonl.gz", reference_documents([DATA / p for p in MATH_FILES], max_chunks_per_doc=8))


if __name__ == "__main__":
    main()
