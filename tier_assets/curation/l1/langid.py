"""Language identification (py3langid, offline) and the per-domain language filter.

Every document gets ``lang`` / ``lang_score``; a document whose language does not
fit its domain is rejected. py3langid ships its model inside the wheel, so this
runs without network or downloads, and its normalized probabilities are
temperature-calibrated by text length (short texts get honest, low scores).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from py3langid.langid import MODEL_FILE
from py3langid.langid import LanguageIdentifier as _PyLangId

from tier_assets.curation.pipeline import Doc, Filter

NO_LANGUAGE = "zxx"  # ISO 639-2 "no linguistic content"; also a py3langid label


def _default_expected() -> dict[str, tuple[str, ...] | None]:
    # zh: on real Mandarin news py3langid sometimes answers wuu (Wu) or yue
    # (Cantonese); they are Chinese too, so they belong in the zh domain.
    # math: "zxx" keeps formula-only / LaTeX-only documents (no prose to identify).
    # code: None = not natural language, no check.
    return {"en": ("en",), "zh": ("zh", "wuu", "yue"), "math": ("en", NO_LANGUAGE), "code": None}


@dataclass(frozen=True)
class LangIdConfig:
    """What each domain accepts and how documents are identified.

    ``expected`` maps a domain to the accepted py3langid labels, or to None for
    domains that are not natural language (code: ``lang`` is then the
    programming language from ``meta["language"]``); the domains given override
    the defaults, the others keep them. A document whose top label
    is accepted is kept whatever its score; otherwise it is rejected as
    ``language_mismatch`` when the identifier is confident (score >=
    ``min_confidence``) and as ``language_low_confidence`` when it is not, so the
    two cases can be told apart (and recovered) in the rejected set.
    """

    expected: Mapping[str, Iterable[str] | None] = field(default_factory=dict)
    min_confidence: float = 0.5
    prefix_chars: int = 2000  # identify on this many whitespace-normalized chars
    min_letters: int = 10  # fewer letters than this in the prefix: lang = "zxx"
    latex_domains: Iterable[str] = ("math",)  # strip LaTeX markup before identifying

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.prefix_chars < 1:
            raise ValueError(f"prefix_chars must be >= 1, got {self.prefix_chars}")
        if self.min_letters < 0:
            raise ValueError(f"min_letters must be >= 0, got {self.min_letters}")
        expected: dict[str, tuple[str, ...] | None] = {}
        for domain, labels in {**_default_expected(), **self.expected}.items():
            if labels is None:
                expected[domain] = None
                continue
            if isinstance(labels, str):
                raise ValueError(f"expected[{domain!r}] must be a list of labels, not the string {labels!r}")
            labels = tuple(labels)
            if not labels or not all(isinstance(x, str) and x for x in labels):
                raise ValueError(f"expected[{domain!r}] must be None or a non-empty list of labels")
            expected[domain] = labels
        object.__setattr__(self, "expected", expected)
        if isinstance(self.latex_domains, str):
            raise ValueError("latex_domains must be a list of domains, not a string")
        object.__setattr__(self, "latex_domains", tuple(self.latex_domains))


@cache
def load_identifier() -> _PyLangId:
    """The py3langid model with normalized probabilities, loaded once per process (~0.8 s)."""
    return _PyLangId.from_model_file(MODEL_FILE, norm_probs=True)


# LaTeX that carries no prose: math, verbatim/picture/tabular bodies, and commands
# whose argument is a key, path or option. Sectioning commands keep their argument.
_LATEX_COMMENT = re.compile(r"(?<!\\)%[^\n]*")
_LATEX_ENV = re.compile(
    r"\\begin\{(equation|align|alignat|eqnarray|gather|multline|displaymath|math|verbatim|"
    r"lstlisting|picture|tikzpicture|tabular|array)(\*?)\}.*?\\end\{\1\2\}",
    re.DOTALL,
)
# Inline $...$ never crosses a blank line, so one unbalanced $ cannot swallow paragraphs of prose.
_LATEX_MATH = re.compile(
    r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<!\\)\$(?:\\\$|[^$\n]|\n(?![ \t\r]*\n))+?\$", re.DOTALL
)
_LATEX_KEY_ARG = re.compile(
    r"\\(?:label|ref|eqref|cref|Cref|pageref|cite[tpa]?\*?|input|include|usepackage|documentclass|"
    r"bibliography|bibliographystyle|url|begin|end|put|hangindent|newcommand|renewcommand)"
    r"\s*(?:\[[^\]]*\])?(?:\{[^{}]*\}|\([^()]*\))*"
)
_LATEX_COMMAND = re.compile(r"\\(?:[A-Za-z@]+\*?|.)")
_BRACES = re.compile(r"[{}]")


def strip_latex(text: str) -> str:
    """Prose of a LaTeX-heavy text: formulas and markup would read as a random language."""
    text = _LATEX_COMMENT.sub(" ", text)
    text = _LATEX_ENV.sub(" ", text)
    text = _LATEX_MATH.sub(" ", text)
    text = _LATEX_KEY_ARG.sub(" ", text)
    text = _LATEX_COMMAND.sub(" ", text)
    return _BRACES.sub(" ", text)


def _meta_language(doc: Doc) -> str | None:
    meta: Any = doc.get("meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return None
    value = meta.get("language") if isinstance(meta, dict) else None
    return value if isinstance(value, str) and value else None


class LanguageIdentifier(Filter):
    """Sets ``lang`` / ``lang_score`` on every document and rejects those that do not fit the domain."""

    name = "langid"

    def __init__(self, config: LangIdConfig | None = None):
        self.config = config or LangIdConfig()
        self._model = load_identifier()
        known = set(self._model.labels)
        for domain, labels in self.config.expected.items():
            unknown = sorted(set(labels or ()) - known)
            if unknown:
                raise ValueError(f"expected[{domain!r}] has labels py3langid does not know: {unknown}")

    def identify(self, text: str, latex: bool = False) -> tuple[str, float | None]:
        """(label, probability) of the text's prefix; ("zxx", None) when it has almost no letters."""
        n = self.config.prefix_chars
        # Over-read before normalizing so whitespace runs and markup do not eat the budget.
        raw = text[: n * 4]
        if latex:
            raw = strip_latex(raw)
        prefix = " ".join(raw.split())[:n]
        if sum(ch.isalpha() for ch in prefix) < self.config.min_letters:
            return NO_LANGUAGE, None
        label, score = self._model.classify(prefix)
        return label, round(score, 4)

    def check(self, doc: Doc) -> tuple[str, str] | None:
        domain = doc.get("domain")
        if domain not in self.config.expected:
            raise ValueError(f"langid: no language expectation configured for domain {domain!r}")
        expected = self.config.expected[domain]
        if expected is None:
            doc["lang"], doc["lang_score"] = _meta_language(doc), None
            return None
        label, score = self.identify(doc.get("text") or "", latex=domain in self.config.latex_domains)
        doc["lang"], doc["lang_score"] = label, score
        if label in expected:
            return None
        shown = "na" if score is None else f"{score:.2f}"
        detail = f"lang={label} score={shown} expected={','.join(expected)}"
        if score is not None and score < self.config.min_confidence:
            return "language_low_confidence", detail
        return "language_mismatch", detail
