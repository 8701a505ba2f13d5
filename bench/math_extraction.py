"""L0 math extraction: do formulas survive HTML extraction as LaTeX?

Pages and gold: ``bench/data/math_extraction`` (15 pages: MathJax TeX text, MathJax v2 script tags,
MathJax v3 rendered output, bare MathML, Wikipedia MathML + annotation + image, KaTeX, LaTeX
images; README there). Per page and per markup kind:

* formula recall: the share of gold formulas found among the formulas of the output (``$..$``,
  ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``, environments), both sides normalized (spacing, braces,
  ``\\left``/``\\right``, synonyms such as ``\\neq``/``\\ne``, Unicode symbols as TeX, environment
  names); a long formula also counts when it is part of an output formula;
* text F1: bag-of-tokens F1 against the gold text (formulas written as TeX), as bench/html_extraction.py.

Systems: trafilatura alone (what L0 did before), ``extract_main_text`` (trafilatura after
``readers/math_html.py``), and UltraData-Math's L0 parser when ``--ultradata-python`` names a
Python that has it installed (it is not on PyPI: install it from its repository, see README).

    python bench/math_extraction.py [--ultradata-python /path/to/python]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean

import trafilatura
from _util import REPO, save, table
from html_extraction import token_f1

from tier_assets.curation.readers.html import extract_main_text
from tier_assets.curation.readers.mathml import unicode_to_latex

DATA = REPO / "bench/data/math_extraction"
TEX_SPAN = re.compile(r"\\begin\{(?P<env>[a-z]+\*?)\}.*?\\end\{(?P=env)\}|\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|"
                      r"(?<!\\)\$(?:\\\$|[^$])+?(?<!\\)\$", re.S)
_DROP = re.compile(r"\\(?:displaystyle|textstyle|scriptstyle|left|right|[bB]igg?[lrm]?|limits|nolimits|notag|"
                   r"quad|qquad|[,;:!> ]|nonumber)(?![A-Za-z])|\\(?:tag|label)\{[^}]*\}|~")
_SYNONYMS = {r"\neq": r"\ne", r"\leq": r"\le", r"\geq": r"\ge", r"\dfrac": r"\frac", r"\tfrac": r"\frac",
             r"\rightarrow": r"\to", r"\lvert": "|", r"\rvert": "|", r"\vert": "|", r"\mid": "|", r"\lbrace": r"\{",
             r"\rbrace": r"\}", r"\dots": r"\ldots", r"\lbrack": "[", r"\rbrack": "]", r"\ast": "*",
             r"\varphi": r"\phi", r"\land": r"\wedge", r"\lor": r"\vee", r"\gets": r"\leftarrow"}
_SYNONYM = re.compile("|".join(re.escape(k) + r"(?![A-Za-z])" for k in sorted(_SYNONYMS, key=len, reverse=True)))
_WRAPPERS = re.compile(r"\\(?:mathrm|operatorname|text|textrm|mbox|mathit|rm|it)(?![A-Za-z])")
_INFIX = re.compile(r"\\(over|choose)(?![A-Za-z])")
_ENV = re.compile(r"\\(?:begin|end)\{[a-zA-Z]+\*?\}(?:\{[a-z]+\})?")
_DELIMITED_ENV = {"vmatrix": "|", "pmatrix": "()", "bmatrix": "[]", "Vmatrix": "\\|"}


def _infix_fractions(t: str) -> str:
    """``{a \\over b}`` -> ``\\frac{a}{b}`` (and ``\\choose`` -> ``\\binom``), within the enclosing group."""
    while (m := _INFIX.search(t)) is not None:
        depth, start = 0, 0
        for i in range(m.start() - 1, -1, -1):
            depth += {"}": 1, "{": -1}.get(t[i], 0) if (i == 0 or t[i - 1] != "\\") else 0
            if depth < 0:
                start = i + 1
                break
        depth, end = 0, len(t)
        for i in range(m.end(), len(t)):
            depth += {"{": 1, "}": -1}.get(t[i], 0) if t[i - 1] != "\\" else 0
            if depth < 0:
                end = i
                break
        command = "frac" if m.group(1) == "over" else "binom"
        t = f"{t[:start]}\\{command}{{{t[start:m.start()]}}}{{{t[m.end():end]}}}{t[end:]}"
    return t


def _delimited_envs(t: str) -> str:
    for env, fence in _DELIMITED_ENV.items():
        opening, closing = (fence[0], fence[-1]) if len(fence) == 2 else (fence, fence)
        t = t.replace(f"\\begin{{{env}}}", opening).replace(f"\\end{{{env}}}", closing)
    return t


def formulas_in_text(text: str) -> list[str]:
    """The TeX spans of a text, outermost first, left to right, delimiters removed (environments kept)."""
    out = []
    for m in TEX_SPAN.finditer(text):
        span = m.group(0)
        for opening, closing in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
            if span.startswith(opening) and span.endswith(closing) and not span.startswith("\\begin"):
                span = span[len(opening):-len(closing)]
                break
        out.append(span)
    return out


def normalize_tex(tex: str) -> str:
    """Spelling-insensitive form of a formula: what a reader would call the same formula maps to one string."""
    t = re.sub(r"\\\\(?:\[[^\]]*\])?", " ", unicode_to_latex(tex))  # line breaks, \\[3pt]
    t = _DROP.sub("", t)
    t = _SYNONYM.sub(lambda m: _SYNONYMS[m.group(0)], t)
    t = _WRAPPERS.sub("", t)
    t = _infix_fractions(t)
    t = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", _delimited_envs(t))
    t = _ENV.sub("", t).replace("&", "")
    t = re.sub(r"(?<!\\)[{}$]|\s+", "", t)
    return t.rstrip(".,")


def formula_recall(gold: list[str], output: str) -> tuple[int, int]:
    """(found, total): gold formulas present among the output's formulas (multiset), a formula of 8+
    normalized characters also when it is contained in one."""
    found_pool = Counter(normalize_tex(f) for f in formulas_in_text(output))
    joined = "\u241e".join(found_pool.elements())
    found = 0
    for g in map(normalize_tex, gold):
        if found_pool[g] > 0:
            found_pool[g] -= 1
            found += 1
        elif len(g) >= 8 and g in joined:
            found += 1
    return found, len(gold)


def load_pages() -> list[dict]:
    pages = [json.loads(line) for line in (DATA / "gold.jsonl").read_text().splitlines() if line.strip()]
    for page in pages:
        page["html"] = gzip.decompress((DATA / page["file"]).read_bytes()).decode("utf-8")
    return pages


def trafilatura_alone(html: str) -> str:
    return trafilatura.extract(trafilatura.load_html(html)) or ""


def ours(html: str) -> str:
    return extract_main_text(html, None)[1]


_ULTRADATA = """
import json, sys
from ultradata_math_parser import GeneralParser
parser = GeneralParser(w3m_path=sys.argv[3])
pages = json.load(open(sys.argv[1]))
out = {}
for pid, html in pages.items():
    try:
        out[pid] = parser.extract(html, base_url="http://example.com/").get("text") or ""
    except Exception as exc:
        out[pid] = ""
        print(pid, type(exc).__name__, exc, file=sys.stderr)
json.dump(out, open(sys.argv[2], "w"))
"""


def ultradata(pages: list[dict], python: str, w3m: str) -> dict[str, str]:
    """UltraData-Math's L0 parser, run in its own environment (its pins, lxml<5.2, clash with ours)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "pages.json", Path(tmp) / "out.json"
        src.write_text(json.dumps({p["id"]: p["html"] for p in pages}))
        subprocess.run([python, "-c", _ULTRADATA, str(src), str(dst), w3m], check=True)
        return json.loads(dst.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ultradata-python", help="a Python with ultradata_math_parser installed")
    parser.add_argument("--w3m", default="w3m", help="the w3m binary UltraData-Math's parser converts with")
    args = parser.parse_args()
    pages = load_pages()
    outputs: dict[str, dict[str, str]] = {
        "trafilatura": {p["id"]: trafilatura_alone(p["html"]) for p in pages},
        "tier_assets": {p["id"]: ours(p["html"]) for p in pages},
    }
    if args.ultradata_python:
        outputs["ultradata_math_l0"] = ultradata(pages, args.ultradata_python, args.w3m)
    rows, per_kind, totals = [], defaultdict(lambda: defaultdict(lambda: [0, 0])), defaultdict(lambda: [0, 0])
    f1s: dict[str, list[float]] = defaultdict(list)
    for page in pages:
        row = {"page": page["id"], "markup": page["markup"], "formulas": len(page["formulas"])}
        for system, texts in outputs.items():
            found, total = formula_recall(page["formulas"], texts[page["id"]])
            f1 = token_f1(texts[page["id"]], page["gold_text"])
            f1s[system].append(f1)
            per_kind[page["markup"]][system][0] += found
            per_kind[page["markup"]][system][1] += total
            totals[system][0] += found
            totals[system][1] += total
            row[f"{system} recall"] = f"{found}/{total}" if total else "-"
            row[f"{system} F1"] = f"{f1:.3f}"
        rows.append(row)
    print(table(rows))
    kinds = [{"markup": kind, **{s: f"{v[0]}/{v[1]} ({v[0] / v[1]:.2f})" if v[1] else "-" for s, v in systems.items()}}
             for kind, systems in sorted(per_kind.items())]
    print("\nformula recall per markup kind")
    print(table(kinds))
    summary = {s: {"formula_recall": round(totals[s][0] / totals[s][1], 3), "formulas_found": totals[s][0],
                   "formulas": totals[s][1], "mean_text_f1": round(mean(f1s[s]), 3)} for s in outputs}
    if not args.ultradata_python:
        summary["ultradata_math_l0"] = "not run (pass --ultradata-python; the parser is not on PyPI)"
    print("\n" + json.dumps(summary, indent=2))
    save("math_extraction", {"pages": rows, "per_markup": kinds, "summary": summary})


if __name__ == "__main__":
    main()
