"""Presentation MathML to LaTeX, for pages whose MathML carries no TeX annotation.

Covers what renderers and authoring tools emit (MathJax's assistive MathML, pandoc
``--mathml``, hand-written pages): tokens, scripts, fractions, roots, under/over
accents, fences, tables and styles. The output is what a person would type, e.g.
``x=\\frac{-b\\pm\\sqrt{b^{2}-4ac}}{2a}``; unknown elements contribute their children, so
nothing a formula says is lost even when its layout is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml.html import HtmlElement

_GREEK = dict(zip(
    "αβγδεϵζηθϑικλμνξπϖρϱσςτυφϕχψωΓΔΘΛΞΠΣΥΦΨΩ",
    ["alpha", "beta", "gamma", "delta", "varepsilon", "epsilon", "zeta", "eta", "theta", "vartheta", "iota",
     "kappa", "lambda", "mu", "nu", "xi", "pi", "varpi", "rho", "varrho", "sigma", "varsigma", "tau", "upsilon",
     "varphi", "phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon",
     "Phi", "Psi", "Omega"], strict=True))
_SYMBOLS = {
    "≠": r"\ne", "±": r"\pm", "∓": r"\mp", "−": "-", "×": r"\times", "·": r"\cdot", "⋅": r"\cdot", "÷": r"\div",
    "≤": r"\le", "≥": r"\ge", "⩽": r"\le", "⩾": r"\ge", "≪": r"\ll", "≫": r"\gg", "≈": r"\approx", "≡": r"\equiv",
    "∼": r"\sim", "≃": r"\simeq", "≅": r"\cong", "∝": r"\propto", "→": r"\to", "←": r"\leftarrow",
    "↔": r"\leftrightarrow", "⇒": r"\Rightarrow", "⇐": r"\Leftarrow", "⇔": r"\Leftrightarrow", "↦": r"\mapsto",
    "⟶": r"\longrightarrow", "⟹": r"\Longrightarrow", "∞": r"\infty", "∑": r"\sum", "∏": r"\prod",
    "∐": r"\coprod", "∫": r"\int", "∬": r"\iint", "∮": r"\oint", "∂": r"\partial", "∇": r"\nabla",
    "∈": r"\in", "∉": r"\notin", "∋": r"\ni", "⊂": r"\subset", "⊃": r"\supset", "⊆": r"\subseteq",
    "⊇": r"\supseteq", "∪": r"\cup", "∩": r"\cap", "∖": r"\setminus", "∅": r"\emptyset", "∀": r"\forall",
    "∃": r"\exists", "¬": r"\neg", "∧": r"\wedge", "∨": r"\vee", "⊕": r"\oplus", "⊗": r"\otimes",
    "∘": r"\circ", "∗": "*", "†": r"\dagger", "⊥": r"\perp", "∥": r"\parallel", "‖": r"\|", "∣": "|",
    "⟨": r"\langle", "⟩": r"\rangle", "〈": r"\langle", "〉": r"\rangle", "⌊": r"\lfloor", "⌋": r"\rfloor",
    "⌈": r"\lceil", "⌉": r"\rceil", "…": r"\ldots", "⋯": r"\cdots", "⋮": r"\vdots", "⋱": r"\ddots",
    "′": "'", "″": "''", "ℏ": r"\hbar", "ℓ": r"\ell", "ℜ": r"\Re", "ℑ": r"\Im", "ℵ": r"\aleph", "°": r"^\circ",
    "ℝ": r"\mathbb{R}", "ℕ": r"\mathbb{N}", "ℤ": r"\mathbb{Z}", "ℚ": r"\mathbb{Q}", "ℂ": r"\mathbb{C}",
    "{": r"\{", "}": r"\}", "%": r"\%", "#": r"\#", "&": r"\&", "⊤": r"\top", "⊢": r"\vdash", "⊨": r"\models",
    "≺": r"\prec", "≻": r"\succ", "⊊": r"\subsetneq", "⊔": r"\sqcup", "⨁": r"\bigoplus", "⋃": r"\bigcup",
    "⋂": r"\bigcap", "√": r"\surd", "\u2061": "", "\u2062": "", "\u2063": ",", "\u2064": "+", "\u00a0": " ",
    **{ch: f"\\{name}" for ch, name in _GREEK.items()},
}
_FUNCTIONS = frozenset({"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh",
                        "tanh", "log", "ln", "lg", "exp", "lim", "liminf", "limsup", "max", "min", "sup", "inf",
                        "det", "dim", "ker", "deg", "gcd", "arg", "Pr", "hom"})
_ACCENTS = {"^": "hat", "ˆ": "hat", "̂": "hat", "¯": "bar", "‾": "overline", "̄": "bar", "→": "vec", "⃗": "vec",
            "˙": "dot", "̇": "dot", "¨": "ddot", "̈": "ddot", "~": "tilde", "˜": "tilde", "̃": "tilde",
            "⏞": "overbrace", "⏟": "underbrace", "_": "underline", "ˇ": "check"}
_BIG_OPERATORS = frozenset({r"\sum", r"\prod", r"\coprod", r"\int", r"\iint", r"\oint", r"\bigcup", r"\bigcap",
                            r"\bigoplus", r"\lim", r"\max", r"\min", r"\sup", r"\inf", r"\liminf", r"\limsup"})
_VARIANTS = {"bold": "mathbf", "double-struck": "mathbb", "script": "mathcal", "fraktur": "mathfrak",
             "bold-italic": "boldsymbol", "sans-serif": "mathsf", "monospace": "mathtt", "normal": "mathrm"}
_CONTROL_WORD_END = re.compile(r"\\[A-Za-z]+$")


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _children(el: HtmlElement) -> list[HtmlElement]:
    return [c for c in el if _local(c.tag) and _local(c.tag) not in ("annotation", "annotation-xml")]


def _join(parts: list[str]) -> str:
    """Concatenate LaTeX pieces, with a space where a control word would run into a letter (``\\alpha x``)."""
    out = ""
    for part in parts:
        if not part:
            continue
        if _CONTROL_WORD_END.search(out) and part[0].isalpha():
            out += " "
        out += part
    return out


def _group(tex: str) -> str:
    """A script's base as one TeX group: a single character or control word needs no braces."""
    return tex if len(tex) == 1 or re.fullmatch(r"\\[A-Za-z]+", tex) else f"{{{tex}}}"


def _spelled(text: str, keep_ascii: bool) -> str:
    out = []
    for i, ch in enumerate(text):
        tex = ch if keep_ascii and ch.isascii() else _SYMBOLS.get(ch, ch)
        if tex != ch and _CONTROL_WORD_END.search(tex) and text[i + 1:i + 2].isalpha():
            tex += " "  # \\alpha x, not \\alphax
        out.append(tex)
    return "".join(out)


def _symbols(text: str) -> str:
    return _spelled(text, keep_ascii=False)


def unicode_to_latex(text: str) -> str:
    """``text`` with its non-ASCII math symbols and Greek letters spelled as TeX (``≠`` -> ``\\ne``);
    ASCII is left alone, so TeX input stays TeX."""
    return _spelled(text, keep_ascii=True)


def _token_text(el: HtmlElement) -> str:
    return " ".join((el.text_content() or "").split())


def _mi(el: HtmlElement) -> str:
    text = _token_text(el)
    variant = el.get("mathvariant") or ("normal" if len(text) > 1 else "")
    if text in _FUNCTIONS:
        return f"\\{text}"
    body = _symbols(text)
    if len(text) > 1 and variant == "normal":
        return f"\\operatorname{{{body}}}" if text.isalpha() else body
    command = _VARIANTS.get(variant)
    return f"\\{command}{{{body}}}" if command and variant != "normal" else body


def _mn(el: HtmlElement) -> str:
    body = _symbols(_token_text(el))
    command = _VARIANTS.get(el.get("mathvariant") or "")
    return f"\\{command}{{{body}}}" if command and command != "mathrm" else body


def _mo(el: HtmlElement) -> str:
    text = _token_text(el)
    if text in _FUNCTIONS:
        return f"\\{text}"
    return _symbols(text)


def _mtext(el: HtmlElement) -> str:
    text = (el.text_content() or "").replace("\u00a0", " ")
    return f"\\text{{{text}}}" if text.strip() else " "


def _row(el: HtmlElement) -> str:
    parts = [convert(c) for c in _children(el)]
    # MathJax writes {n \choose k} as ( mfrac[linethickness=0] ): \binom already draws the parentheses
    for i in range(1, len(parts) - 1):
        if parts[i].startswith("\\binom") and parts[i - 1] == "(" and parts[i + 1] == ")":
            parts[i - 1] = parts[i + 1] = ""
    return _join(parts)


def _args(el: HtmlElement, n: int) -> list[str]:
    kids = [convert(c) for c in _children(el)]
    return (kids + [""] * n)[:n]


def _msup(el: HtmlElement) -> str:
    base, sup = _args(el, 2)
    return f"{_group(base)}^{{{sup}}}"


def _msub(el: HtmlElement) -> str:
    base, sub = _args(el, 2)
    return f"{_group(base)}_{{{sub}}}"


def _msubsup(el: HtmlElement) -> str:
    base, sub, sup = _args(el, 3)
    return f"{_group(base)}_{{{sub}}}^{{{sup}}}"


def _mfrac(el: HtmlElement) -> str:
    num, den = _args(el, 2)
    if (el.get("linethickness") or "").strip() in ("0", "0px", "0em"):
        return f"\\binom{{{num}}}{{{den}}}"
    return f"\\frac{{{num}}}{{{den}}}"


def _msqrt(el: HtmlElement) -> str:
    return f"\\sqrt{{{_row(el)}}}"


def _mroot(el: HtmlElement) -> str:
    base, index = _args(el, 2)
    return f"\\sqrt[{index}]{{{base}}}"


def _accent(script_el: HtmlElement | None) -> str | None:
    if script_el is None or _local(script_el.tag) != "mo":
        return None
    return _ACCENTS.get(_token_text(script_el))


def _mover(el: HtmlElement) -> str:
    kids = _children(el)
    base, over = _args(el, 2)
    accent = _accent(kids[1] if len(kids) > 1 else None)
    if accent:
        return f"\\{accent}{{{base}}}"
    if base in _BIG_OPERATORS:
        return f"{base}^{{{over}}}"
    return f"\\overset{{{over}}}{{{base}}}"


def _munder(el: HtmlElement) -> str:
    kids = _children(el)
    base, under = _args(el, 2)
    accent = _accent(kids[1] if len(kids) > 1 else None)
    if accent in ("underline", "underbrace"):
        return f"\\{accent}{{{base}}}"
    if base in _BIG_OPERATORS or base.startswith("\\"):
        return f"{base}_{{{under}}}"
    return f"\\underset{{{under}}}{{{base}}}"


def _munderover(el: HtmlElement) -> str:
    base, under, over = _args(el, 3)
    return f"{_group(base)}_{{{under}}}^{{{over}}}"


def _mfenced(el: HtmlElement) -> str:
    opening, closing = el.get("open", "("), el.get("close", ")")
    separator = (el.get("separators") or ",").strip()[:1] or ","
    inner = separator.join(convert(c) for c in _children(el))
    return f"\\left{_symbols(opening) or '.'}{inner}\\right{_symbols(closing) or '.'}"


def _mtable(el: HtmlElement) -> str:
    rows = []
    for row in _children(el):
        cells = _children(row)
        if _local(row.tag) == "mlabeledtr":
            cells = cells[1:]
        rows.append(" & ".join(convert(c) for c in cells) if _local(row.tag) != "mtd" else convert(row))
    return "\\begin{matrix}" + " \\\\ ".join(rows) + "\\end{matrix}"


def _mstyle(el: HtmlElement) -> str:
    inner = _row(el)
    command = _VARIANTS.get(el.get("mathvariant") or "")
    return f"\\{command}{{{inner}}}" if command and command != "mathrm" else inner


def _mmultiscripts(el: HtmlElement) -> str:
    kids = _children(el)
    base = convert(kids[0]) if kids else ""
    post, pre, into = [], [], None
    for kid in kids[1:]:
        if _local(kid.tag) == "mprescripts":
            into = pre
            continue
        (into if into is not None else post).append(convert(kid) if _local(kid.tag) != "none" else "")
    script = "".join(f"_{{{s}}}^{{{p}}}" for s, p in zip(post[::2], post[1::2], strict=False))
    prescript = "".join(f"_{{{s}}}^{{{p}}}" for s, p in zip(pre[::2], pre[1::2], strict=False))
    return (f"{{}}{prescript}" if prescript else "") + _group(base) + script


def _menclose(el: HtmlElement) -> str:
    inner = _row(el)
    notation = el.get("notation") or ""
    return f"\\boxed{{{inner}}}" if "box" in notation else inner


_HANDLERS: dict[str, Callable[[HtmlElement], str]] = {
    "mi": _mi, "mn": _mn, "mo": _mo, "mtext": _mtext, "ms": _mtext, "msup": _msup, "msub": _msub,
    "msubsup": _msubsup, "mfrac": _mfrac, "msqrt": _msqrt, "mroot": _mroot, "mover": _mover, "munder": _munder,
    "munderover": _munderover, "mfenced": _mfenced, "mtable": _mtable, "mstyle": _mstyle,
    "mmultiscripts": _mmultiscripts, "menclose": _menclose, "mspace": lambda el: " ",
    "mphantom": lambda el: "", "none": lambda el: "", "mprescripts": lambda el: "",
}


def convert(el: HtmlElement) -> str:
    """LaTeX of one MathML element (unknown elements: their children in order)."""
    handler = _HANDLERS.get(_local(el.tag))
    if handler is not None:
        return handler(el)
    if _local(el.tag) == "semantics":
        kids = _children(el)
        return convert(kids[0]) if kids else ""
    return _row(el)


def mathml_to_latex(math: HtmlElement) -> str:
    """LaTeX for a ``<math>`` element (without delimiters), whitespace runs folded."""
    return " ".join(convert(math).split())
