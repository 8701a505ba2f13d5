"""Which L4 items a question may match, by its language.

The shipped embedder (all-MiniLM-L6-v2) is English: its vectors of Chinese text
are close to one another whatever they say, so a Chinese question ranked by
them would return Chinese items at random, and an English question could land
on a Chinese item. No multilingual sentence embedder ships in a PyPI wheel we
can install here, so ``ask`` routes by language instead:

* a Chinese question (Han characters are at least a third of its letters) is
  matched against Chinese items only, lexically: the share of the question's
  content character bigrams (question words and particles removed) that the
  item contains. This finds items that name what the question names; it does
  not find paraphrases (a question using other words for the same thing).
* any other question is matched against the non-Chinese items by embedding
  cosine, as before.

A deployment with a multilingual embedder (``EmbedderResource.model``) can
drop the routing; until then, Chinese questions get lexical matches only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tier_assets.curation.schema import HAN

_LETTER = re.compile(r"[^\W\d_]")
# question words, particles and copulas that carry no subject: removed before bigrams are taken
_ZH_FUNCTION = re.compile(r"是什么|什么是|什么|为什么|怎么样|怎么|如何|哪些|哪个|哪里|哪儿|多少|是谁|谁|吗|呢|吧|请问|是|的|了|和|与|在|有")


def is_chinese(text: str) -> bool:
    """True when Han characters are at least a third of the text's letters."""
    letters = _LETTER.findall(text)
    return bool(letters) and len(HAN.findall(text)) * 3 >= len(letters)


def content_bigrams(text: str) -> set[str]:
    """The Han character bigrams of ``text`` left after removing question words and particles."""
    runs = HAN.pattern
    bigrams: set[str] = set()
    for chunk in re.findall(rf"(?:{runs})+", _ZH_FUNCTION.sub(" ", text)):
        if len(chunk) == 1:
            bigrams.add(chunk)
        bigrams.update(chunk[i:i + 2] for i in range(len(chunk) - 1))
    return bigrams


def lexical_scores(question: str, texts: Sequence[str]) -> list[float]:
    """Per text, the share of the question's content bigrams it contains (0 when the question has none)."""
    wanted = content_bigrams(question)
    if not wanted:
        return [0.0] * len(texts)
    return [sum(1 for b in wanted if b in text) / len(wanted) for text in texts]
