"""Math markup in HTML turned into LaTeX text before main-text extraction.

trafilatura drops ``<script>`` (where MathJax v2 keeps the TeX), images (LaTeX rendered to
pictures keeps the TeX in ``alt``) and MathML without a TeX annotation, and it reads KaTeX's
and MathJax's rendered glyph spans as text (``ax2+bx+c``). UltraData-Math's L0 parser keeps
formulas as LaTeX for this reason; so does this pass. Each math element is replaced in the tree
by a text node: ``$...$`` inline, ``$$...$$`` display, the delimiters the L1 math rules and
L4 read. TeX already written in the page text (``\\(..\\)``, ``$..$``, ``\\[..\\]``) is text and
passes through the extractor untouched.
"""

from __future__ import annotations

import re

from lxml.html import HtmlElement

from tier_assets.curation.readers.mathml import mathml_to_latex

_TEX_SCRIPT_TYPES = ("math/tex", "text/tex", "math/latex")
# MathJax v2/v3 rendered output (glyph spans, previews, assistive copies): the TeX or MathML
# source beside it is read instead
_RENDERED_CLASSES = frozenset({"MathJax", "MathJax_Display", "MathJax_Preview", "MathJax_SVG",
                               "MathJax_SVG_Display", "MathJax_CHTML", "MathJax_MathML", "MJX_Assistive_MathML",
                               "MathJax_PHTML", "MathJax_HTML"})
_DISPLAYSTYLE = re.compile(r"^\{\\displaystyle\s*(.*)\}$|^\\displaystyle\s*(.*)$", re.DOTALL)
# an alt text is taken for LaTeX only when the image says it renders math and the text reads as TeX
_MATH_IMG_HINT = re.compile(r"latex|mathtex|codecogs|\btex\b|mwe-math|wp\.com/latex|equation|formula|math", re.I)
_TEX_LIKE = re.compile(r"\\[A-Za-z]+|[_^]\{?|[=<>+]|\{.*\}")
_X_TEX = "application/x-tex"
# TeX delimiters in page text: environments, \\[ \\( and $$ / $..$ (not \\$)
_TEX_TEXT = re.compile(r"\\begin\{|\\\[|\\\(|\$\$|(?<!\\)\$[^$\s][^$]*(?<!\\)\$")
_CONTAINERS = frozenset({"div", "section", "article", "main", "body", "center", "blockquote"})
# elements whose text runs inline: a formula inside stays part of the sentence
_INLINE_PARENTS = frozenset({"p", "span", "a", "em", "strong", "b", "i", "u", "li", "td", "th", "dd", "dt", "h1",
                             "h2", "h3", "h4", "h5", "h6", "label", "font", "sub", "sup", "small", "big", "code",
                             "q", "cite", "caption", "figcaption", "summary", "mark", "abbr", "nobr"})


def _classes(el: HtmlElement) -> set[str]:
    return set((el.get("class") or "").split())


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _unwrap_displaystyle(tex: str) -> str:
    """Wikipedia wraps every formula in ``{\\displaystyle ...}``; the wrapper is presentation, not math."""
    tex = tex.strip()
    m = _DISPLAYSTYLE.match(tex)
    return (m.group(1) if m.group(1) is not None else m.group(2)).strip() if m else tex


def delimited(tex: str, display: bool) -> str:
    """``$tex$`` or ``$$tex$$`` with whitespace runs folded to one space (HTML source line breaks are not TeX)."""
    tex = " ".join(_unwrap_displaystyle(tex).split())
    if not tex:
        return ""
    if "$" in tex:  # \text{for $x$}: dollar delimiters would end at the inner dollar
        return f"\\[{tex}\\]" if display else f"\\({tex}\\)"
    return f"$${tex}$$" if display else f"${tex}$"


def _text_before(el: HtmlElement) -> str:
    prev = el.getprevious()
    return (prev.tail if prev is not None else el.getparent().text) or ""


def _replace(el: HtmlElement, text: str, block: bool = False) -> None:
    """Put ``text`` where ``el`` was (its tail kept) and remove ``el``.

    A display formula, or a formula standing alone, directly inside a block container (``div``,
    ``section``...) becomes a paragraph of its own: extractors drop text lying loose in a container.
    """
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail or ""
    standalone = not tail.strip() and not _text_before(el).strip()
    if text and (block or standalone) and _local(parent.tag) not in _INLINE_PARENTS:
        paragraph = parent.makeelement("p")
        paragraph.text, paragraph.tail = text, tail
        parent.replace(el, paragraph)
        return
    before = _text_before(el)
    if block and text:
        text = f"\n{text}\n"
    elif text:  # keep the formula a separate word: "$x$ and", not "$x$and"
        text = (" " if before[-1:].isalnum() else "") + text + (" " if tail[:1].isalnum() else "")
    prev = el.getprevious()
    if prev is not None:
        prev.tail = (prev.tail or "") + text + tail
    else:
        parent.text = (parent.text or "") + text + tail
    parent.remove(el)


def _annotation(el: HtmlElement) -> str | None:
    for node in el.iter():
        if _local(node.tag) == "annotation" and (node.get("encoding") or "").lower() == _X_TEX:
            return node.text or ""
    return None


def math_element_latex(math: HtmlElement) -> str:
    """The LaTeX of a ``<math>`` element: its TeX annotation, its ``alttext``, else converted from MathML."""
    tex = _annotation(math)
    if tex is None:
        tex = math.get("alttext")
    if tex is None or not tex.strip():
        tex = mathml_to_latex(math)
    return tex


def _is_display(math: HtmlElement) -> bool:
    return (math.get("display") or "").lower() == "block" or (math.get("mode") or "").lower() == "display"


def _first_math(el: HtmlElement) -> HtmlElement | None:
    return next((node for node in el.iter() if _local(node.tag) == "math"), None)


def _katex(root: HtmlElement) -> int:
    """KaTeX: ``.katex`` holds ``.katex-mathml`` (MathML with the TeX annotation) and ``.katex-html`` (glyphs)."""
    count = 0
    for el in list(root.iter()):
        classes = _classes(el) if isinstance(el.tag, str) else set()
        if "katex" not in classes or el.getparent() is None:
            continue
        display_box = next((a for a in el.iterancestors() if "katex-display" in _classes(a)), None)
        math = _first_math(el)
        tex = _annotation(el) if math is None else math_element_latex(math)
        if tex is None:
            continue  # html-only output carries no TeX: leave the glyphs
        target = display_box if display_box is not None else el
        _replace(target, delimited(tex, display_box is not None), block=display_box is not None)
        count += 1
    return count


def _mathjax_v3(root: HtmlElement) -> int:
    """MathJax v3/v4: ``mjx-container`` holds glyphs and, with the assistive extension, the MathML."""
    count = 0
    for el in list(root.iter("mjx-container")):
        if el.getparent() is None:
            continue
        math = _first_math(el)
        display = (el.get("display") or "").lower() == "true" or (math is not None and _is_display(math))
        text = delimited(math_element_latex(math), display) if math is not None else ""
        _replace(el, text, block=display)
        count += bool(text)
    return count


def _tex_script_follows(el: HtmlElement) -> bool:
    """Whether a MathJax v2 TeX script comes right after a rendered frame (MathJax puts it there)."""
    for sibling in list(el.itersiblings())[:2]:
        if sibling.tag == "script" and (sibling.get("type") or "").lower().startswith(_TEX_SCRIPT_TYPES):
            return True
    return False


def _mathjax_v2(root: HtmlElement) -> int:
    """MathJax v2 keeps the TeX in ``<script type="math/tex">``; its rendered siblings are dropped."""
    count = 0
    for el in list(root.iter()):
        if isinstance(el.tag, str) and _classes(el) & _RENDERED_CLASSES and el.getparent() is not None:
            math = _first_math(el)
            if math is None or _tex_script_follows(el):
                _replace(el, "")
            else:  # a saved page whose scripts were stripped: the assistive MathML is all that is left
                display = "MathJax_Display" in _classes(el) or _is_display(math)
                _replace(el, delimited(math_element_latex(math), display), block=display)
                count += 1
    for el in list(root.iter("script")):
        kind = (el.get("type") or "").lower()
        if not kind.startswith(_TEX_SCRIPT_TYPES):
            continue
        tex = el.text or ""
        display = "mode=display" in kind.replace(" ", "")
        _replace(el, delimited(tex, display), block=display)
        count += bool(tex.strip())
    return count


def _mathml(root: HtmlElement) -> int:
    """Bare ``<math>`` (Wikipedia, LaTeXML, MathML pages); Wikipedia's wrapper also holds a fallback image."""
    count = 0
    for el in list(root.iter()):
        if not isinstance(el.tag, str) or el.getparent() is None:
            continue
        if "mwe-math-element" in _classes(el):
            math = _first_math(el)
            img = next((i for i in el.iter("img") if i.get("alt")), None)
            if math is not None:
                tex, display = math_element_latex(math), _is_display(math)
            elif img is not None:
                tex, display = img.get("alt") or "", "display" in (img.get("class") or "")
            else:
                continue
            _replace(el, delimited(tex, display), block=display)
            count += 1
    for el in list(root.iter()):
        if _local(el.tag) == "math" and el.getparent() is not None:
            display = _is_display(el)
            _replace(el, delimited(math_element_latex(el), display), block=display)
            count += 1
    return count


def _images(root: HtmlElement) -> int:
    """Images of rendered LaTeX (Wikipedia's PNG/SVG mode, WordPress ``latex.php``, CodeCogs) keep the TeX in ``alt``."""
    count = 0
    for el in list(root.iter("img")):
        alt = (el.get("alt") or "").strip()
        hints = " ".join(filter(None, (el.get("class"), el.get("src"), el.get("data-src"))))
        if not alt or el.getparent() is None or not _MATH_IMG_HINT.search(hints) or not _TEX_LIKE.search(alt):
            continue
        display = "display" in (el.get("class") or "")
        _replace(el, delimited(alt.strip("$"), display), block=display)
        count += 1
    return count


def _paragraph(parent: HtmlElement, text: str) -> HtmlElement:
    paragraph = parent.makeelement("p")
    paragraph.text = " ".join(text.split())
    return paragraph


def _loose_tex(root: HtmlElement) -> int:
    """TeX written straight into a container (``<div>$$x$$</div>``, as MathJax and KaTeX auto-render pages
    do) becomes a paragraph: extractors drop text lying loose in a container, and with it the formulas."""
    count = 0
    for el in list(root.iter()):
        if _local(el.tag) not in _CONTAINERS:
            continue
        if el.text and _TEX_TEXT.search(el.text):
            el.insert(0, _paragraph(el, el.text))
            el.text = None
            count += 1
        for child in list(el):
            if child.tail and _TEX_TEXT.search(child.tail):
                paragraph = _paragraph(el, child.tail)
                child.tail = None
                child.addnext(paragraph)
                count += 1
    return count


def latex_in_place(root: HtmlElement) -> int:
    """Replace every math element under ``root`` by its LaTeX as text; returns how many were replaced.

    Order matters: KaTeX and MathJax wrappers first (their MathML is a copy of the TeX beside it),
    then bare MathML, then images; TeX text left loose in containers last.
    """
    return (_katex(root) + _mathjax_v3(root) + _mathjax_v2(root) + _mathml(root) + _images(root)
            + _loose_tex(root))


# case-sensitive substring tests (lower-casing a whole page costs more than the tests): markup is written
# in these cases, MathJax and LaTeX in the two usual ones
_MARKERS = ("<math", "katex", "math/tex", "text/tex", "mjx-container", "latex", "LaTeX", "mwe-math", "MathJax",
            "mathjax")


def has_math_markup(html: str) -> bool:
    """A cheap test on the raw page, so pages without math skip the tree walks of :func:`latex_in_place`."""
    return any(marker in html for marker in _MARKERS)
