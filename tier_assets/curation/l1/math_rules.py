"""Math's own L1 rule: fragments of papers and dumps of data are not math text.

The web rules judge prose statistics, and on math they mostly punish formulas and short
definitions (PlanetMath: 36% kept). UltraData-Math's cleaner keeps math by using few rules
(length, punctuation, boilerplate). What those few rules let through are the pieces a LaTeX
source splits into: a section heading alone, a list of ``\\input`` files, an acknowledgements
section, a verbatim dump of coordinates or a bare table. This filter names each of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tier_assets.curation.l1.filters.base import DocView, RuleFilter, Verdict, rejection
from tier_assets.curation.l1.filters.latex import mask_latex
from tier_assets.curation.validation import check_fraction, check_non_negative

# environments that hold data or drawings, not sentences
_DATA_ENV = re.compile(r"\\begin\{(verbatim|tabular\*?|tabularx|longtable|picture|tikzpicture|array|tabbing|"
                       r"lstlisting|alltt|Verbatim)\}.*?(?:\\end\{\1\}|$)", re.S)
# commands whose argument is structure (a file, a label, a heading), not prose
_STRUCTURAL = re.compile(r"\\(?:input|include|label|ref|eqref|cite[tp]?|section|subsection|subsubsection|"
                         r"paragraph|chapter|bibliographystyle|bibliography|documentclass|usepackage|newcommand|"
                         r"renewcommand|PMlinkescapeword|PMlinkescapetext|PMlinkname|url|href)\*?"
                         r"(?:\[[^\]]*\])?(?:\{[^{}]*\})+")
_COMMAND = re.compile(r"\\[A-Za-z@]+\*?|\\.")
_PROSE_WORD = re.compile(r"(?<![\\\w])[A-Za-z][a-z]+(?:['’-][a-z]+)?(?!\w)")
_NUMERIC_CHARS = frozenset("0123456789.,;:+-−()[]{}&|/*=^_$\\")
_ACKNOWLEDGEMENTS = re.compile(r"^\s*(?:\\(?:sub)*section\*?\{\s*|\\paragraph\*?\{\s*|#+\s*)?"
                               r"acknowledge?ments?\b", re.I)


def prose_words(text: str) -> list[str]:
    """The words of running prose: formulas, data environments, structural commands and markup removed."""
    text = _STRUCTURAL.sub(" ", _DATA_ENV.sub(" ", text))
    masked = _COMMAND.sub(" ", mask_latex(text))
    return [w for w in _PROSE_WORD.findall(masked) if w != "math"]


def data_fraction(text: str) -> float:
    """Share of the non-space characters that sit in data environments or in lines made of numbers."""
    total = sum(not ch.isspace() for ch in text)
    if not total:
        return 0.0
    in_env = sum(sum(not ch.isspace() for ch in m.group(0)) for m in _DATA_ENV.finditer(text))
    rest = _DATA_ENV.sub(" ", text)
    numeric = sum(sum(not ch.isspace() for ch in line) for line in rest.splitlines() if _is_number_line(line))
    return (in_env + numeric) / total


def _is_number_line(line: str) -> bool:
    """A line of a table or listing: three or more fields, at least 80% digits and separators."""
    chars = [ch for ch in line if not ch.isspace()]
    if len(line.split()) < 3 or not any(ch.isdigit() for ch in chars):
        return False
    return sum(ch in _NUMERIC_CHARS for ch in chars) >= 0.8 * len(chars)


@dataclass
class MathFragmentConfig:
    """What separates math text from pieces of a LaTeX source (None disables a rule).

    ``min_prose_words``: fewer words of prose than this (a heading alone, ``\\input`` lists) is a fragment;
    ``max_data_fraction`` / ``data_min_prose_words``: a document mostly made of data environments or
    number lines is a dump unless it also has this much prose around the data (a table of values with its
    definitions is kept, a bare table is not); ``reject_acknowledgements``: an acknowledgements section.
    """

    min_prose_words: int | None = 8
    max_data_fraction: float | None = 0.6
    data_min_prose_words: int = 40
    reject_acknowledgements: bool = True

    def __post_init__(self) -> None:
        check_non_negative(self, "min_prose_words", "data_min_prose_words", optional=True)
        check_fraction(self, "max_data_fraction", optional=True)


class MathFragmentFilter(RuleFilter):
    """Rejects fragments of LaTeX sources and data dumps; measured on the raw text (formulas are not counted)."""

    name = "math_fragment"

    def __init__(self, config: MathFragmentConfig | None = None) -> None:
        self.config = config or MathFragmentConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, text = self.config, view.text
        if c.reject_acknowledgements and _ACKNOWLEDGEMENTS.match(text):
            return f"{self.name}:acknowledgements", "the document is an acknowledgements section"
        words = len(prose_words(text))
        signals["prose_words"] = words
        if c.min_prose_words is not None and words < c.min_prose_words:
            return rejection(self.name, "no_prose", "prose_words", words, "<", c.min_prose_words)
        if c.max_data_fraction is not None:
            share = data_fraction(text)
            signals["data_fraction"] = share
            if share > c.max_data_fraction and words < c.data_min_prose_words:
                return rejection(self.name, "data_dump", "data_fraction", share, ">", c.max_data_fraction)
        return None
