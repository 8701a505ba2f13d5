"""Builds pages/ and gold.jsonl of the math extraction benchmark (run once; the outputs are committed).

Gold never comes from an extractor: formulas are the pages' own TeX (MathJax TeX text, Wikipedia's
``application/x-tex`` annotations, KaTeX auto-render delimiters) read from fixed content regions
chosen per page by hand, and the gold text is that region's text with each formula written as TeX.
Sources are read from local snapshots of the repositories (see README.md for repo @ commit).

    python bench/data/math_extraction/build.py SNAPSHOT_ROOT SHARED_DATA_ROOT
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from lxml import html as lhtml

HERE = Path(__file__).resolve().parent
SKIP_SECTIONS = {"See also", "References", "Notes", "External links", "Further reading", "Contents",
                 "Navigation menu"}
TEX_SPAN = re.compile(r"\\begin\{(?P<env>[a-z]+\*?)\}.*?\\end\{(?P=env)\}|\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|"
                      r"(?<!\\)\$(?:\\\$|[^$])+?(?<!\\)\$", re.S)


def git_show(root: Path, repo: str, path: str) -> str:
    return subprocess.run(["git", "-C", str(root / repo / "repo"), "show", f"HEAD:{path}"], check=True,
                          capture_output=True).stdout.decode("utf-8")


def formulas_in_text(text: str) -> list[str]:
    """The TeX spans of a text, outermost first, left to right (delimiters kept)."""
    return [m.group(0) for m in TEX_SPAN.finditer(text)]


def unwrap(tex: str) -> str:
    tex = " ".join(tex.split())
    m = re.fullmatch(r"\{\\displaystyle\s*(.*)\}", tex)
    return m.group(1).strip() if m else tex


# ------------------------------------------------------------------------------------------ Wikipedia


def wiki_gold(page: str) -> tuple[str, list[str]]:
    """Article body: paragraphs, headings, lists and indented formulas up to 'See also' / 'References';
    each formula is its annotation TeX (Wikipedia's source), references and [edit] links dropped."""
    tree = lhtml.fromstring(page)
    body = max(tree.xpath('//div[contains(concat(" ", @class, " "), " mw-parser-output ")]'),
               key=lambda d: len(d.text_content()))
    for junk in body.xpath('.//sup[contains(@class,"reference")]|.//span[contains(@class,"mw-editsection")]'
                           '|.//style|.//div[contains(@class,"hatnote")]|.//table|.//div[@role="note"]'
                           '|.//div[contains(@class,"thumb")]|.//figure|.//div[contains(@class,"toc")]'):
        junk.drop_tree()
    for wrapper in body.xpath('.//*[contains(@class,"mwe-math-element")]'):
        ann = wrapper.xpath('.//*[local-name()="annotation"][@encoding="application/x-tex"]')
        tex = unwrap(ann[0].text if ann else wrapper.xpath(".//img/@alt")[0])
        math = wrapper.xpath('.//*[local-name()="math"]')
        display = bool(math) and math[0].get("display") == "block"
        tail = wrapper.tail
        wrapper.clear()
        wrapper.text, wrapper.tail = (f"$${tex}$$" if display else f"${tex}$"), tail
        wrapper.set("class", "formula")
    lines = []
    for el in body.iter("h2", "h3", "h4", "p", "li", "dd", "dt", "div"):
        if el.tag == "div" and el.get("class") != "formula":
            continue  # a display formula stands in a div of its own; other divs are containers
        if el.tag in ("h2", "h3", "h4"):
            heading = " ".join(el.text_content().split())
            if heading in SKIP_SECTIONS:
                break
            lines.append(heading)
        elif el.tag == "p" or not any(a.tag in ("li", "dd", "dt", "p") for a in el.iterancestors()):
            lines.append(" ".join(el.text_content().split()))  # nested list items are in their parent's text
    text = "\n".join(line for line in lines if line)
    return text, formulas_in_text(text)


# ------------------------------------------------------------------------------------------ MathJax demos


def region_text(page: str, xpath: str) -> str:
    tree = lhtml.fromstring(page)
    lines = []
    for region in tree.xpath(xpath):
        for bad in region.xpath(".//script|.//style|.//pre"):
            bad.drop_tree()
        for el in region.iter("h1", "h2", "p", "li"):
            lines.append(" ".join(el.text_content().split()))
        loose = [t for t in region.xpath("./text()") if t.strip()]
        lines += [" ".join(t.split()) for t in loose]
    return "\n".join(line for line in lines if line)


def tex_page_gold(page: str) -> tuple[str, list[str]]:
    text = region_text(page, '//div[@id="frame"]')
    return text, formulas_in_text(text)


def equation_numbers_gold(page: str) -> tuple[str, list[str]]:
    tree = lhtml.fromstring(page)
    show = tree.xpath('//div[contains(@class,"show")]')[0]
    chunks = [" ".join(region_text(page, '//div[@class="inset"]').split())]
    for node in show.iter():
        if node.tag == "h2":
            chunks.append(" ".join(node.text_content().split()))
        if node.tail and node.tail.strip() and node.getparent() is show:
            chunks.append(" ".join(node.tail.split()))
    text = "\n".join(chunks)
    return text, formulas_in_text(text)


def katex_autorender_gold(page: str) -> tuple[str, list[str]]:
    tree = lhtml.fromstring(page)
    test = tree.xpath('//div[@id="test"]')[0]
    for pre in test.xpath(".//pre"):
        pre.drop_tree()  # auto-render skips <pre>: "$pre tag$" there is not math
    for comment in test.xpath(".//comment()"):
        comment.drop_tree()
    text = " ".join(test.text_content().split())
    text = text.replace(" An AMS environment", "\nAn AMS environment").replace(" \\begin{equation}", "\n\\begin{equation}")
    formulas = [f for f in formulas_in_text(text) if "…" not in f]
    return text, formulas


# ------------------------------------------------------------------------------------------ renderers


def katex_render(tex: str, display: bool, node_modules: Path) -> str:
    script = ("const k=require('katex');process.stdout.write(k.renderToString(process.argv[1],"
              "{displayMode:process.argv[2]==='1',throwOnError:false}))")
    return subprocess.run(["node", "-e", script, tex, "1" if display else "0"], check=True, capture_output=True,
                          cwd=node_modules.parent, text=True).stdout


def strip_delims(span: str) -> tuple[str, bool]:
    for opening, closing, display in (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False),
                                      ("$", "$", False)):
        if span.startswith(opening) and span.endswith(closing):
            return span[len(opening):-len(closing)], display
    return span, True  # an environment, rendered whole


def rerender_tex_page(page: str, render: Callable[[str, bool], str]) -> str:
    """The TeX demo page as a browser leaves it after client-side rendering: each TeX span of the
    content region replaced by ``render(tex, display)``; the TeX itself is gone from the text."""
    head, body = page.split('<div id="frame">', 1)
    out, pos = [], 0
    for m in TEX_SPAN.finditer(body):
        tex, display = strip_delims(m.group(0))
        out += [body[pos:m.start()], render(lhtml.fromstring(f"<p>{tex}</p>").text_content(), display)]
        pos = m.end()
    return head + '<div id="frame">' + "".join(out) + body[pos:]


def rerender_wiki(page: str, render: Callable[[str, bool], str]) -> str:
    """A Wikipedia page with each math element rendered another way (from its annotation TeX)."""
    tree = lhtml.fromstring(page)
    for wrapper in tree.xpath('//*[contains(@class,"mwe-math-element")]'):
        ann = wrapper.xpath('.//*[local-name()="annotation"][@encoding="application/x-tex"]')
        math = wrapper.xpath('.//*[local-name()="math"]')
        display = bool(math) and math[0].get("display") == "block"
        new = lhtml.fragment_fromstring(render(unwrap(ann[0].text), display), create_parent="span")
        new.tail = wrapper.tail
        wrapper.getparent().replace(wrapper, new)
    return lhtml.tostring(tree, encoding="unicode", doctype="<!DOCTYPE html>")


def wiki_png_mode(page: str) -> str:
    """Wikipedia's PNG/SVG rendering mode: the MathML is gone, the image with the TeX in ``alt`` stays."""
    tree = lhtml.fromstring(page)
    for math in tree.xpath('//span[contains(@class,"mwe-math-mathml")]'):
        math.drop_tree()
    return lhtml.tostring(tree, encoding="unicode", doctype="<!DOCTYPE html>")


def wordpress_img(tex: str, display: bool) -> str:
    """WordPress.com's rendering of ``$latex ...$``: an image from latex.php, the TeX in alt and title."""
    quoted = urllib.parse.quote_plus(tex)
    alt = tex.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    img = (f'<img src="https://s0.wp.com/latex.php?latex={quoted}&#038;bg=ffffff&#038;fg=000&#038;s=0" '
           f'alt="{alt}" title="{alt}" class="latex" />')
    return f'<p style="text-align:center;">{img}</p>' if display else img


# ------------------------------------------------------------------------------------------ main


def main() -> None:
    snapshots, shared = Path(sys.argv[1]), Path(sys.argv[2])
    node_modules = Path(sys.argv[3]) if len(sys.argv) > 3 else Path("/tmp/katexjs/node_modules")
    demos = "mathjax+MathJax-demos-web"
    tex_page = git_show(snapshots, demos, "page/tex-chtml.html")
    tex_text, tex_formulas = tex_page_gold(tex_page)
    mml_page = git_show(snapshots, demos, "page/mml-chtml.html")
    mml_text = region_text(mml_page, '//div[@id="frame"]')
    wiki_pages = {
        "wikipedia-hermitian-matrix": git_show(snapshots, "mozilla+readability", "test/test-pages/wikipedia-3/source.html"),
        "wikipedia-tsne": git_show(snapshots, "adbar+trafilatura", "tests/cache/en.wikipedia.org.tsne.html"),
        "wikipedia-language-model": (shared / "html/dclm-pages/wikipedia_paragraph1.html").read_text(),
    }

    def katex(tex: str, display: bool) -> str:
        return katex_render(tex, display, node_modules)

    v2 = git_show(snapshots, demos, "v2-support/v2-script-tags.html")
    eqn = git_show(snapshots, demos, "page/equation-numbers.html")
    auto = git_show(snapshots, "KaTeX+KaTeX", "contrib/auto-render/index.html")
    readability_mj = git_show(snapshots, "mozilla+readability", "test/test-pages/mathjax/source.html")
    magic = json.loads(git_show(snapshots, "opendatalab+magic-html", "benchmark/data/forum/base.json"))
    sha = "3bea25afda1671509d82cee7e6529ae362a60b7c1f5817d4627a455cc9b23ab3"
    puzzling = git_show(snapshots, "opendatalab+magic-html", f"benchmark/data/forum/htmls/{sha}.html")
    v2_text = region_text(v2, '//div[@id="frame"]|//div[contains(@class,"explain")]')
    v2_formulas = ["$x + 1$", "$$x+1\\over x-1$$"]
    v2_text = v2_text.replace("the page.\n", "the page.\n$x + 1$\n$$x+1\\over x-1$$\n", 1)
    # the MathML pages show the TeX page's formulas; their headings and prose are their own
    mml_gold_text = tex_text.replace("MathJax v4: TeX input, HTML output test", mml_text.splitlines()[0])
    pages: list[tuple[str, str, str, str, tuple[str, list[str]]]] = [
        ("mathjax-tex", "tex-text", "mathjax/MathJax-demos-web page/tex-chtml.html", tex_page,
         (tex_text, tex_formulas)),
        ("mathjax-mml", "mathml", "mathjax/MathJax-demos-web page/mml-chtml.html", mml_page,
         (mml_gold_text, tex_formulas)),
        ("mathjax-v2-script-tags", "mathjax-v2-script", "mathjax/MathJax-demos-web v2-support/v2-script-tags.html",
         v2, (v2_text, v2_formulas)),
        ("mathjax-equation-numbers", "tex-text", "mathjax/MathJax-demos-web page/equation-numbers.html", eqn,
         equation_numbers_gold(eqn)),
        ("readability-mathjax3", "mathjax-v3-chtml+mathml", "mozilla/readability test/test-pages/mathjax/source.html",
         readability_mj, (tex_text.replace("MathJax v4: TeX input, HTML output test",
                                           "MathJax v3 beta: MathML input, HTML output test"), tex_formulas)),
        ("katex-autorender", "tex-text", "KaTeX/KaTeX contrib/auto-render/index.html", auto,
         katex_autorender_gold(auto)),
        ("stackexchange-puzzling", "mathjax-v2-rendered (sidebar only)",
         "opendatalab/magic-html benchmark/data/forum (puzzling.stackexchange.com)", puzzling,
         (magic[sha]["content"], [])),
        ("mathjax-tex-as-katex", "katex-rendered", "derived: mathjax-tex rendered by katex 0.16.11",
         rerender_tex_page(tex_page, katex), (tex_text, tex_formulas)),
        ("mathjax-tex-as-wordpress", "img-alt", "derived: mathjax-tex as WordPress latex.php images",
         rerender_tex_page(tex_page, wordpress_img), (tex_text, tex_formulas)),
    ]
    for name, page in wiki_pages.items():
        gold = wiki_gold(page)
        pages.append((name, "wikipedia-mathml+annotation+img", f"{name} (see README)", page, gold))
    pages.append(("wikipedia-hermitian-as-katex", "katex-rendered", "derived: wikipedia-hermitian-matrix, KaTeX",
                  rerender_wiki(wiki_pages["wikipedia-hermitian-matrix"], katex),
                  wiki_gold(wiki_pages["wikipedia-hermitian-matrix"])))
    for name in ("wikipedia-tsne", "wikipedia-language-model"):
        pages.append((f"{name}-png-mode", "img-alt", f"derived: {name}, Wikipedia PNG mode",
                      wiki_png_mode(wiki_pages[name]), wiki_gold(wiki_pages[name])))
    (HERE / "pages").mkdir(exist_ok=True)
    with open(HERE / "gold.jsonl", "w") as out:
        for name, markup, source, page, (text, formulas) in pages:
            (HERE / "pages" / f"{name}.html.gz").write_bytes(gzip.compress(page.encode("utf-8"), mtime=0))
            formulas = [unwrap(strip_delims(f)[0]) if not f.startswith("\\begin") else unwrap(f) for f in formulas]
            out.write(json.dumps({"id": name, "markup": markup, "source": source, "file": f"pages/{name}.html.gz",
                                  "gold_text": text, "formulas": formulas}, ensure_ascii=False) + "\n")
            print(f"{name:34s} {markup:34s} formulas {len(formulas):3d} gold chars {len(text):6d}")


if __name__ == "__main__":
    main()
