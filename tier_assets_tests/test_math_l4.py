"""L4 math definitions: the subject is the term the sentence defines, as LaTeX authors mark it (emphasis) or
name it ("is called", "we call", "is defined as / by"). Sentences are from PlanetMath entries (CC BY-SA 3.0,
../shared/data/math/planetmath-number-theory-sample.jsonl)."""

from __future__ import annotations

import pytest

from tier_assets.curation.l4.extract import kind_and_subject, math_subject, rule_items
from tier_assets.curation.l4.settings import load_l4_settings


@pytest.mark.parametrize(("sentence", "subject"), [
    ("A {\\em Cullen number} $C_m$ is a number of the form $2^m m + 1$, where $m$ is an integer.", "Cullen number"),
    ("A {\\sl pure cubic field\\/} is an extension of $\\mathbb{Q}$ of the form $\\mathbb{Q}(\\sqrt[3]{n})$ for some "
     "$n \\in \\mathbb{Z}$.", "pure cubic field"),
    ("The $n$th {\\em \\PMlinkescapetext{Ramanujan} \\PMlinkescapetext{prime}} $p$ is the smallest prime such that "
     "there are at least $n$ primes between $\\frac{x}{2}$ and $x$ for any $x \\ge p$.", "Ramanujan prime"),
    ("A number $\\alpha \\in \\mathbb{C}$ is called an \\emph{algebraic number} if there exists a polynomial "
     "$f(x) = a_n x^n + \\cdots + a_0$ such that $f(\\alpha)=0$.", "algebraic number"),
    ("The Mangoldt function $\\Lambda$ is defined by \\[ \\Lambda (n) = \\ln p \\]", "Mangoldt function"),
])
def test_math_definition_subjects(sentence: str, subject: str):
    assert math_subject(sentence) == subject
    assert kind_and_subject(sentence, "math") == ("definition", subject)


@pytest.mark.parametrize("sentence", [
    "Only three are known as of 2007, namely: 5, 13, 563 (A007540 in Sloane's OEIS).",
    "This is \\emph{not} what the theorem claims about the numbers.",
    "\\textbf{Definition.}\\, Let $m$ be a positive integer and $a$ an integer.",
])
def test_stress_dates_and_run_in_headings_name_nothing(sentence: str):
    assert math_subject(sentence) is None


def test_rule_items_of_a_planetmath_definition_entry():
    text = ("A {\\em singly even number} is an even number divisible by 2 but by no greater power of two. "
            "If $n$ is a singly even number, then $n \\equiv 2 \\pmod 4$.")
    doc = {"doc_id": "d", "text": text, "domain": "math", "batch": "b", "tier": "L2", "signals": {}, "meta": {}}
    items = rule_items(doc, load_l4_settings("math"))
    assert [(i.kind, i.subject) for i in items][:1] == [("definition", "singly even number")]
    assert items[0].cited == text[items[0].start:items[0].end]
