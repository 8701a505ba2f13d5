"""L1 math rules: real math (PlanetMath definitions, tables with their definitions) is kept, the fragments a
LaTeX source splits into (a heading, \\input lists, acknowledgements, data dumps) are rejected by name."""

from __future__ import annotations

import json

import pytest

from tier_assets.curation.l1.filters import default_filters
from tier_assets.curation.l1.math_rules import MathFragmentConfig, data_fraction, prose_words
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.pipeline import Pipeline


def math_rules():
    """The math domain's rule filters with the recipe's thresholds, as L1 runs them."""
    return default_filters("math", load_l1_settings("math").filters)


def verdicts(texts: list[str]) -> list[str]:
    """'' for a kept text, else its rejection reason, in input order."""
    docs = [{"doc_id": str(i), "text": t} for i, t in enumerate(texts)]
    result = Pipeline(math_rules()).run(docs)
    reasons = {d["doc_id"]: d["reason"] for d in result.rejected}
    return [reasons.get(str(i), "") for i in range(len(texts))]


@pytest.fixture(scope="module")
def arxiv(shared_data):
    return [json.loads(line)["text"] for line in (shared_data / "math/arxiv-latex-sample.jsonl").open()]


@pytest.fixture(scope="module")
def planetmath(shared_data):
    return {json.loads(line)["id"]: json.loads(line)["text"]
            for line in (shared_data / "math/planetmath-number-theory-sample.jsonl").open()}


def test_arxiv_fragments_are_rejected_by_name(arxiv):
    # records 1-5 of the shared arXiv sample: acknowledgements, an \input list, a coordinate dump
    assert verdicts(arxiv[1:6]) == ["math_fragment:acknowledgements", "math_fragment:no_prose",
                                    "math_fragment:acknowledgements", "math_fragment:acknowledgements",
                                    "math_fragment:data_dump"]


def test_short_definitions_and_number_theory_prose_are_kept(planetmath):
    # a 215-character definition, and an entry the web rules rejected as alpha_words (numbers are words)
    kept = [planetmath["planetmath:AlgebraicNumber"], planetmath["planetmath:OreNumber"]]
    assert verdicts(kept) == ["", ""]


def test_a_table_with_its_definitions_is_kept_and_a_bare_list_is_not(planetmath):
    table = planetmath["planetmath:TableOfValuesOfTheMobiusFunctionAndTheMertensFunction"]
    bare = planetmath["planetmath:PrimeNumbersFirstThousandPositive"]
    assert data_fraction(table) > MathFragmentConfig().max_data_fraction
    assert len(prose_words(table)) >= MathFragmentConfig().data_min_prose_words
    assert verdicts([table, bare]) == ["", "math_fragment:no_prose"]


def test_prose_words_skip_formulas_markup_and_structure():
    text = ("\\section{Introduction}\\label{sec:intro}\n\\input{body.inc}\nLet $f\\colon X \\to Y$ be "
            "\\emph{continuous}; see \\cite{rudin}.\n\\begin{verbatim}\nO 0.274 1.424\n\\end{verbatim}")
    assert prose_words(text) == ["Let", "be", "continuous", "see"]


def test_at_least_95_percent_of_planetmath_is_kept(planetmath):
    texts = list(planetmath.values())
    kept = sum(not reason for reason in verdicts(texts))
    assert kept >= 0.95 * len(texts)
