"""The LaTeX-aware view the math domain measures, so that formulas do not count as symbols or short lines."""

from __future__ import annotations

import re

# LaTeX math: $$..$$, $..$ within a paragraph (not \$), \[..\], \(..\) and display environments
_INLINE_MATH = re.compile(r"(?<!\\)\$(?:\\\$|[^$\n]|\n(?![ \t]*\n))+?(?<!\\)\$")
_MATH_ENV_OPEN = re.compile(
    r"\\begin\{(equation|align|alignat|gather|multline|eqnarray|displaymath|math|flalign|split|array"
    r"|[pbvBV]?matrix|cases)(\*?)\}"
)
_MATH_START = re.compile(r"[$\\]")
_DELIMITED = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"))
LATEX_PLACEHOLDER = "math"
_LATEX_MARKUP = re.compile(r"\\\\|(?<!\\)[{}&~]")
_SOFT_BREAK = re.compile(r"(?<=[^\n])\n(?=[^\n])")


class _NextOccurrence:
    """``text.find(needle, start)`` for starts that only grow: each needle's answer is reused until passed,
    so an unclosed delimiter repeated n times costs O(n), not the O(n^2) of a regex searching to the end
    from every opener."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._last: dict[str, tuple[int, int]] = {}

    def __call__(self, needle: str, start: int) -> int:
        searched_from, found = self._last.get(needle, (len(self.text) + 1, -1))
        if searched_from <= start and (found == -1 or found >= start):
            return found
        found = self.text.find(needle, start)
        self._last[needle] = (start, found)
        return found


def _math_span_end(text: str, p: int, find: _NextOccurrence) -> int | None:
    """End of the math span opening at ``p`` (``$$..$$``, ``$..$``, ``\\[..\\]``, ``\\(..\\)``, a math
    environment), tried in that order with the shortest body, or None."""
    for opener, closer in _DELIMITED:
        if text.startswith(opener, p):
            q = find(closer, p + len(opener) + 1)  # a body of at least one character
            if q >= 0:
                return q + len(closer)
            break
    if text[p] == "$":
        inline = _INLINE_MATH.match(text, p)  # bounded by the next unescaped $ or blank line
        return inline.end() if inline else None
    env = _MATH_ENV_OPEN.match(text, p)
    if env:
        closer = f"\\end{{{env[1]}{env[2]}}}"
        q = find(closer, env.end())
        if q >= 0:
            return q + len(closer)
    return None


def _replace_math(text: str, placeholder: str) -> str:
    """Every LaTeX math span, scanned left to right, replaced by ``placeholder``; linear in the text."""
    find = _NextOccurrence(text)
    out: list[str] = []
    done = pos = 0
    while (start := _MATH_START.search(text, pos)) is not None:
        p = start.start()
        end = _math_span_end(text, p, find)
        if end is None:
            pos = p + 1
            continue
        out += [text[done:p], placeholder]
        done = pos = end
    out.append(text[done:])
    return "".join(out)


def mask_latex(text: str) -> str:
    """The text as the math domain measures it, so that LaTeX is not counted as symbols or short lines: each
    math span becomes one placeholder word, markup characters (braces, ``&``, ``~``, ``\\\\``) become spaces,
    and single line breaks join lines into paragraphs, as LaTeX and Markdown render them."""
    if "$" in text or "\\" in text:
        text = _LATEX_MARKUP.sub(" ", _replace_math(text, LATEX_PLACEHOLDER))
    return _SOFT_BREAK.sub(" ", text)
