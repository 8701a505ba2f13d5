"""Builds labelled.jsonl, the L1 safety dev set (labelling rules: docs/safety-labelling.md).

Real pages come from ../shared/data (never holdout/) through the project's own readers; their labels are
the UNSAFE table below (every page not listed was read and judged safe). Chinese pages over 900 characters
also give a second document, their second half (a safe page's half is safe), so that zh reaches 150
documents. authored.jsonl holds the unsafe pages written by hand because the real data has almost none in
English. Each document goes to the tune or the report split by a hash of its id.

    .venv/bin/python bench/data/l1_safety/build_set.py
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import py3langid

from tier_assets.curation.readers import Extracted, ReaderConfig, get_reader, infer_format

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2].parent / "shared" / "data"
MAX_CHARS = 20_000  # keeps the file small; long pages are cut at a line end
HALF_MIN_CHARS = 900
EN_SAMPLE = 260
# url -> (category, note) for the real unsafe pages (read one by one)
UNSAFE = {
    "http://003338.cn/l41/481397.html": ("spam", "keyword-stuffed scraped news with a mojibake title"),
    "http://035.psb556.com/24/i/u_1090813/article.html": ("gambling", "car-site 404 page with injected 网上开户"),
    "http://041696.com/15477/list_6_4.html": ("gambling", "六合彩 tipster list"),
    "http://044545.com/topic/20200207/015849.html": ("gambling", "充值/提现 gambling plan"),
    "http://0513mt.com/index.php/art/detail/id/8884.html": ("adult", "adult fiction index"),
    "http://05925.net/index.php/vod/type/id/53.html": ("adult", "adult video site, disclaimer only"),
    "http://0755krk.com/76104/list_4_1.html": ("gambling", "六合彩 tipster list"),
    "http://077678u.info/erxiaoshujinguang/list_6_2.html": ("gambling", "六合彩 tipster site"),
    "http://096355.com/video/11073.html?11073-0-2": ("adult", "adult video site navigation"),
}
# hard negatives: safe pages on health, sex education, legal matters or news about the same subjects
HARD_NEGATIVE = re.compile(
    r"sex|porn|nude|casino|gambl|betting|rape|viagra|cialis|pills|loan|health|medic|clinic|court|justice|law"
    r"|性|赌|彩|博|医|健康|法院|法律|强奸|色情", re.I)


def sources() -> list[Path]:
    web = SHARED / "web"
    files = [web / "cc-main-2019-30-dolma.jsonl.gz", *sorted(web.glob("ccnet*")), *sorted(web.glob("*sample.jsonl")),
             *sorted((SHARED / "warc").glob("*.warc.gz"))]
    files += sorted((SHARED / "html/article-extraction-benchmark/html").glob("*.html.gz"))
    return files + sorted((SHARED / "html/magic-html-zh").glob("*/htmls/*.html"))


def html_urls() -> dict[str, str]:
    urls = {k: v["url"] for k, v in json.loads((SHARED / "html/article-extraction-benchmark/ground-truth.json")
                                                 .read_text()).items()}
    for base in (SHARED / "html/magic-html-zh").glob("*/base.json"):
        urls.update({k: v.get("url") for k, v in json.loads(base.read_text()).items()})
    return urls


def cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: text.rfind("\n", 0, MAX_CHARS) + 1 or MAX_CHARS]


def real_pages() -> list[dict]:
    urls, pages = html_urls(), []
    for path in sources():
        for item in get_reader(infer_format(path))(path, ReaderConfig()):
            if not isinstance(item, Extracted) or not item.text.strip():
                continue
            lang = py3langid.classify(item.text[:2000])[0]
            if lang not in ("en", "zh"):
                continue
            url = item.url or urls.get(path.name.split(".")[0])
            category, note = UNSAFE.get(url or "", ("none", ""))
            pages.append({"lang": lang, "url": url, "text": cut(item.text), "origin": "real",
                          "source": f"{path.relative_to(SHARED)}#{item.record_index}",
                          "label": "safe" if category == "none" else "unsafe", "category": category, "note": note})
    return pages


def second_halves(pages: list[dict]) -> list[dict]:
    out = []
    for page in pages:
        if page["lang"] == "zh" and page["label"] == "safe" and len(page["text"]) >= HALF_MIN_CHARS:
            text = page["text"]
            start = text.find("\n", len(text) // 2) + 1 or len(text) // 2
            out.append({**page, "text": text[start:], "origin": "real_half", "source": page["source"] + "#half"})
    return out


def pick_en(pages: list[dict]) -> list[dict]:
    """Every English hard negative and unsafe page, then a hash-ordered sample of the rest."""
    en = [p for p in pages if p["lang"] == "en"]
    first = [p for p in en if p["label"] == "unsafe" or HARD_NEGATIVE.search((p["url"] or "") + p["text"][:3000])]
    rest = sorted((p for p in en if p not in first), key=lambda p: hashlib.sha1(p["source"].encode()).hexdigest())
    return first + rest[: max(0, EN_SAMPLE - len(first))]


def main() -> None:
    pages = real_pages()
    zh = [p for p in pages if p["lang"] == "zh"]
    authored = [{**json.loads(line), "origin": "authored", "label": "unsafe", "note": ""}
                for line in (HERE / "authored.jsonl").read_text().splitlines() if line.strip()]
    for i, doc in enumerate(authored):
        doc["source"] = f"authored.jsonl#{i}"
    docs = pick_en(pages) + zh + second_halves(zh) + authored
    with (HERE / "labelled.jsonl").open("w") as out:
        for doc in docs:
            doc["id"] = hashlib.sha1(doc["source"].encode()).hexdigest()[:12]
            doc["hard_negative"] = doc["label"] == "safe" and bool(HARD_NEGATIVE.search((doc["url"] or "") + doc["text"][:3000]))
            doc["split"] = "tune" if int(doc["id"], 16) % 2 == 0 else "report"
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"{len(docs)} documents written to {HERE / 'labelled.jsonl'}")


if __name__ == "__main__":
    main()
