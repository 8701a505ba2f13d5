"""C4's rules (Raffel et al. 2020), as in DataTrove 0.10 in line mode, deciding only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain
from typing import Any

from tier_assets.curation.l1.filters.base import DocView, RuleFilter, Verdict, rejection
from tier_assets.curation.l1.filters.tokenizer import CHUNK_TOKENS, IS_PUNCT, TERMINALS
from tier_assets.curation.validation import check_non_negative

_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


def _sentence_count(line: str) -> int:
    """Sentences spaCy's sentencizer finds in ``line``: a new one starts at the first non-punctuation token
    after a sentence-final mark."""
    count, after_terminal = 1, False
    for token in chain.from_iterable(map(CHUNK_TOKENS.__getitem__, line.split())):
        if token in TERMINALS:
            after_terminal = True
        elif after_terminal and not IS_PUNCT[token]:
            count += 1
            after_terminal = False
    return count


@dataclass
class C4QualityConfig:
    """C4's rules over lines ending in terminal punctuation with enough words (None disables a count).

    ``mask_latex`` (math domain) measures :func:`mask_latex`'s view, whose lines are paragraphs.
    """

    remove_citations: bool = True
    filter_no_terminal_punct: bool = True
    min_num_sentences: int | None = 5
    min_words_per_line: int | None = 3
    max_word_length: int | None = 1000
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True
    mask_latex: bool = False

    def __post_init__(self) -> None:
        check_non_negative(self, "min_num_sentences", "min_words_per_line", "max_word_length", optional=True)


class C4QualityFilter(RuleFilter):
    """Drops pages with fewer than 5 sentences in proper lines, placeholder text, or code (curly brackets).

    Decides only: the line removal C4 also performs belongs to :class:`C4LinesMapper` in L1.
    """

    name = "c4_quality"

    def __init__(self, config: C4QualityConfig | None = None) -> None:
        self.config = config or C4QualityConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name = self.config, self.name
        text = view.masked().text if c.mask_latex else view.text
        min_sentences = c.min_num_sentences or 0
        # once enough sentences are counted, only a doc-level rule could still change the decision
        doc_rules_apply = (c.filter_lorem_ipsum and "lorem ipsum" in text.lower()) or (
            c.filter_curly_bracket and "{" in text
        )
        sentences, kept_lines = 0, 0
        for raw in text.splitlines():
            line = raw.strip()
            words = line.split()
            too_long = c.max_word_length is not None and len(line) > c.max_word_length
            if too_long and max(map(len, words)) > c.max_word_length:
                continue
            if c.remove_citations and "[" in line:
                line = _CITATION.sub("", line)
            if c.filter_no_terminal_punct and (not line.endswith(_END_PUNCTUATION) or line.endswith("...")):
                continue
            if c.min_words_per_line is not None and len(words) < c.min_words_per_line:
                continue
            lowered = line.lower()
            if c.filter_lorem_ipsum and "lorem ipsum" in lowered:
                return f"{name}:lorem_ipsum", "a kept line contains 'lorem ipsum'"
            if c.filter_javascript and "javascript" in lowered:
                continue
            if c.filter_curly_bracket and "{" in line:
                return f"{name}:curly_bracket", "a kept line contains '{'"
            if c.filter_policy and any(p in lowered for p in POLICY_SUBSTRINGS):
                continue
            kept_lines += 1
            if sentences < min_sentences:
                sentences += _sentence_count(line)
            elif not doc_rules_apply:
                break
        signals["sentences"] = sentences
        if sentences < min_sentences:
            return rejection(name, "too_few_sentences", "sentences", sentences, "<", min_sentences)
        return None
