"""L3 refinement and L4 organization: budget, parsing, every verification rule, evidence, merge, index.

Rule-level logic is fed real source text (shared data, the Python standard
library) and hand-written candidate outputs; the LLM paths run the real local
model (SmolLM2-135M, loaded once per session) with a few short generations.
"""

from __future__ import annotations

import json
import math
import sysconfig
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tier_assets.curation.l3.budget import TokenBudget, prompt_tokens
from tier_assets.curation.l3.parse import Failure, Parsed, parse_output
from tier_assets.curation.l3.prompts import FORMATS, PROMPT_VERSION, build_prompt, instructions
from tier_assets.curation.l3.refine import refine_partition, source_span, variant_for
from tier_assets.curation.l3.settings import L3Settings
from tier_assets.curation.l3.verify import (
    calibrate,
    check_rules,
    code_changes,
    judge_cost,
    judge_pairs,
    judge_prompt,
    similarities,
    unsupported_entities,
    unsupported_formulas,
    unsupported_numbers,
)
from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.extract import Item, definition_term, locate, rule_items, sentence_spans
from tier_assets.curation.l4.index import L4Index
from tier_assets.curation.l4.organize import organize
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.l4.verify import evidence_problems, verify_items
from tier_assets.curation.schema import derive_doc_id, to_table

PARSE_REASONS = {"empty", "truncated", "unparseable", "no_result", "wrong_language", "copies_prompt"}
VERIFY_REASONS = {"unsupported_numbers", "unsupported_formulas", "unsupported_entities", "code_changed",
                  "no_documentation", "low_similarity", "unfaithful", "judge_unavailable", "budget_exhausted"}


# ---------------------------------------------------------------------------------------------- real sources


def _jsonl(path: Path, line: int) -> str:
    with open(path, encoding="utf-8") as fh:
        for i, row in enumerate(fh):
            if i == line:
                return json.loads(row)["text"]
    raise IndexError(line)


def _paragraph(text: str, starts_with: str) -> str:
    start = text.index(starts_with)
    end = text.find("\n", start)
    return text[start:end if end > 0 else len(text)]


@pytest.fixture(scope="session")
def burma(shared_data: Path) -> str:
    """A real travel page on Myanmar: numbers, places and dates to hallucinate about."""
    return _jsonl(shared_data / "web" / "redpajama-cc-2023-06-sample.jsonl", 8)


@pytest.fixture(scope="session")
def burma_facts(burma: str) -> str:
    return _paragraph(burma, "myanmar is a country in Southeast Asia")


@pytest.fixture(scope="session")
def kaon(shared_data: Path) -> str:
    """A real arXiv paragraph with inline LaTeX."""
    return _paragraph(_jsonl(shared_data / "math" / "arxiv-latex-sample.jsonl", 8), "The $\\bar K N$ scattering")


@pytest.fixture(scope="session")
def rugby(shared_data: Path) -> str:
    return _jsonl(shared_data / "web" / "redpajama-cc-2023-06-sample.jsonl", 0)


@pytest.fixture(scope="session")
def bisect_source() -> str:
    return (Path(sysconfig.get_paths()["stdlib"]) / "bisect.py").read_text()


@pytest.fixture(scope="session")
def embedder():
    from tier_assets.curation.models.embedder import get_embedder

    return get_embedder()


@pytest.fixture(scope="session")
def llm():
    from tier_assets.curation.models.llm import load_llm

    return load_llm()


def _doc(doc_id: str, text: str, domain: str = "en", batch: str = "b1", score: float = 3.0, tier: str = "L2",
         **extra) -> dict:
    return {"doc_id": doc_id, "parent_ids": [], "tier": tier, "domain": domain, "batch": batch, "text": text,
            "score": score, "signals": {}, "models": {}, **extra}


# ---------------------------------------------------------------------------------------------- config


def test_configs_reject_invalid_settings():
    with pytest.raises(ValueError, match="budget_tokens"):
        L3Settings(budget_tokens=-1)
    with pytest.raises(ValueError, match="unknown format"):
        L3Settings(formats={"en": ["poem"]})
    with pytest.raises(ValueError, match="not a string"):
        L3Settings(formats={"en": "qa"})
    with pytest.raises(ValueError, match="min_new_tokens"):
        L3Settings(max_new_tokens=8, min_new_tokens=16)
    with pytest.raises(ValueError, match="min_similarity"):
        L3Settings(min_similarity={"poem": 0.5})
    with pytest.raises(ValueError, match=r"no_repeat_ngram must be 0 \(off\) or an integer >= 2, got 1"):
        L3Settings(no_repeat_ngram=1)
    with pytest.raises(ValueError, match="L4Settings.no_repeat_ngram"):
        L4Settings(no_repeat_ngram=-2)
    with pytest.raises(ValueError, match="min_entailment"):
        L4Settings(min_entailment=1.5)
    with pytest.raises(ValueError, match="merge_threshold"):
        L4Settings(merge_threshold=2.0)
    assert L3Settings(formats={"en": ["qa"]}).formats_for("en") == ("qa",)
    assert L3Settings().formats_for("math") == ("knowledge", "qa")


# ---------------------------------------------------------------------------------------------- parsing


def _parse(fmt: str, raw: str, source: str, domain: str = "en", finish: str = "stop", variant: str | None = None):
    variant = variant or FORMATS[fmt].variants[0]
    prompt = build_prompt(fmt, variant, domain, source)
    return parse_output(fmt, variant, domain, raw, finish, source, instructions(prompt))


def test_parse_valid_outputs(burma_facts: str):
    qa = _parse("qa", "<question>Which countries border Myanmar?</question>\n<answer>China, Thailand, India, Laos "
                      "and Bangladesh.</answer>", burma_facts)
    assert isinstance(qa, Parsed)
    assert qa.fields == {"question": "Which countries border Myanmar?",
                         "answer": "China, Thailand, India, Laos and Bangladesh."}
    assert qa.text.startswith("Question: Which countries") and "\n\nAnswer: China" in qa.text
    dialogue = _parse("dialogue", "<dialogue>\nTeacher: Myanmar lies in Southeast Asia.\nStudent: Which countries "
                                  "border it?\nTeacher: China, Thailand, India, Laos and Bangladesh.\n</dialogue>",
                      burma_facts, variant="teacher_student")
    assert isinstance(dialogue, Parsed)
    assert [t["speaker"] for t in dialogue.fields["turns"]] == ["Teacher", "Student", "Teacher"]
    # a complete structure followed by rambling cut at the limit is kept
    cut = _parse("rewrite", "<rewrite>Myanmar is a Southeast Asian country bordering China and India.</rewrite>\n"
                            "Note that the", burma_facts, finish="length")
    assert isinstance(cut, Parsed)
    # a one-field format accepts a bare answer that ended on its own; the lead-in line is dropped
    bare = _parse("rewrite", "Here is the rewrite:\nMyanmar is a Southeast Asian country bordering China and "
                             "India.", burma_facts)
    assert isinstance(bare, Parsed)
    assert bare.fields == {"rewrite": "Myanmar is a Southeast Asian country bordering China and India."}
    # bare documented code keeps its first line, though it ends in a colon like a lead-in would
    code = "def mean(values):\n    total = 0\n    for v in values:\n        total += v\n    return total / len(values)\n"
    documented = code.replace("\n", '\n    """Average of values."""\n', 1)
    parsed = parse_output("code_document", "docstrings", "code", documented, "stop", code, "Document the code.")
    assert isinstance(parsed, Parsed) and parsed.fields["code"].startswith("def mean(values):\n")


@pytest.mark.parametrize(("fmt", "raw", "finish", "domain", "reason"), [
    ("rewrite", "", "stop", "en", "empty"),
    ("rewrite", "   \n", "length", "en", "empty"),
    ("qa", "<question>Where is Myanmar?</question>\n<answer></answer>", "stop", "en", "empty"),
    ("rewrite", "<rewrite>Myanmar is a country in Southeast Asia and it has", "length", "en", "truncated"),
    ("rewrite", "<rewrite>Myanmar is a country in Southeast Asia.", "stop", "en", "truncated"),
    ("qa", "<question>Where is Myanmar?</question>\nThe answer is that Myanmar", "length", "en", "truncated"),
    ("rewrite", "Myanmar is a country in Southeast Asia with long borders and", "length", "en", "truncated"),
    ("rewrite", "<text>Myanmar is a country in Southeast Asia with long borders.</text>", "stop", "en", "unparseable"),
    ("qa", "Where is Myanmar? It is in Southeast Asia.", "stop", "en", "unparseable"),
    ("qa", "<question>Where is Myanmar?</question>", "stop", "en", "unparseable"),
    ("dialogue", "<dialogue>\nMyanmar is in Asia.\nTeacher: Yes.\n</dialogue>", "stop", "en", "unparseable"),
    ("dialogue", "<dialogue>\nTeacher: Myanmar is in Asia.\nTeacher: It borders China.\n</dialogue>", "stop", "en",
     "unparseable"),
    ("knowledge", "<knowledge>none</knowledge><exercise>-</exercise><solution>-</solution>", "stop", "math",
     "no_result"),
    ("rewrite", "<rewrite>缅甸是东南亚的一个国家，与中国、泰国、印度、老挝和孟加拉国接壤，海岸线很长。</rewrite>", "stop", "en",
     "wrong_language"),
    ("rewrite", "<rewrite>Myanmar is a country in Southeast Asia that borders China, Thailand and India.</rewrite>",
     "stop", "zh", "wrong_language"),
    ("qa", "<question>the question</question>\n<answer>the answer</answer>", "stop", "en", "copies_prompt"),
    ("rewrite", "<rewrite>...</rewrite>", "stop", "en", "copies_prompt"),
    ("rewrite", "<rewrite>Honey bees are social insects that live in colonies. Each colony contains a single queen, "
                "whose role is to lay the eggs, and thousands of worker bees, which gather nectar and build the comb."
                "</rewrite>", "stop", "en", "copies_prompt"),
])
def test_parse_failures_have_reasons(burma_facts: str, fmt, raw, finish, domain, reason):
    result = _parse(fmt, raw, burma_facts, domain=domain, finish=finish,
                    variant="teacher_student" if fmt == "dialogue" else None)
    assert isinstance(result, Failure), result
    assert result.reason == reason, result
    assert result.reason in PARSE_REASONS and result.detail


def test_copying_the_source_is_rejected(burma_facts: str):
    result = _parse("rewrite", f"<rewrite>{burma_facts}</rewrite>", burma_facts)
    assert isinstance(result, Failure) and result.reason == "copies_prompt"
    assert "copies the source" in result.detail


# ---------------------------------------------------------------------------------------------- rules


def test_numbers_rule(burma_facts: str):
    faithful = ("Myanmar, a Southeast Asian country, shares 5876 km of borders: 2,185 km with China and 1,800 km "
                "with Thailand. It won independence from Britain in 1948.")
    assert unsupported_numbers(faithful, burma_facts) == []
    invented = "Myanmar has 5,876 km of borders and a population of 54 million; it joined ASEAN in 1997."
    assert unsupported_numbers(invented, burma_facts) == ["54", "1997"]
    # list markers are layout, not claims; numbers written as words in the source support digits
    assert unsupported_numbers("1. Myanmar borders China.\n2. It borders Laos.", burma_facts) == []
    assert unsupported_numbers("The union changed its name 2 times.", "The union changed its name twice.") == []


def test_formulas_rule(kaon: str):
    faithful = "In the $I = 0$ channel, $\\bar K N$ scattering is governed by the $\\Lambda(1405)$, 27 MeV below threshold."
    assert unsupported_formulas(faithful, kaon) == []
    invented = "The $\\Lambda(1405)$ decays into $\\Sigma\\pi$ in the $I=1$ channel."
    assert unsupported_formulas(invented, kaon) == ["\\Sigma\\pi", "I=1"]


def test_entities_rule(burma_facts: str):
    faithful = ("Myanmar lies in Southeast Asia and borders China, Thailand, India, Laos and Bangladesh. "
                "It became independent from Britain.")
    assert unsupported_entities(faithful, burma_facts) == []
    invented = "Myanmar lies in Southeast Asia. Its leader Aung San Suu Kyi met the United Nations in Geneva."
    assert unsupported_entities(invented, burma_facts) == ["Aung San Suu Kyi", "United Nations", "Geneva"]
    assert unsupported_entities("Many tourists visit the COVID-19 museum.", burma_facts) == ["COVID-19"]


def test_check_rules_names_the_failed_rule(burma_facts: str, kaon: str):
    rules = FORMATS["rewrite"].rules
    assert check_rules(rules, "Myanmar borders China and Laos.", burma_facts) is None
    assert check_rules(rules, "Myanmar has 135 ethnic groups.", burma_facts) == ("unsupported_numbers", "135")
    assert check_rules(rules, "The $I=1$ channel.", kaon) == ("unsupported_formulas", "I=1")
    assert check_rules(rules, "Myanmar borders Vietnam.", burma_facts) == ("unsupported_entities", "Vietnam")
    with pytest.raises(ValueError, match="unknown rule"):
        check_rules(["dates"], "x", "y")


def test_documented_code_must_be_the_same_code(bisect_source: str):
    span = source_span(bisect_source, "code", "python", 1200)
    excerpt = bisect_source[span[0]:span[1]]
    assert excerpt.startswith("def insort_right(") and excerpt.endswith("a.insert(lo, x)\n")  # whole functions
    documented = excerpt.replace("    if key is None:", "    # without a key, compare items directly\n"
                                                     "    if key is None:", 1)
    assert code_changes(excerpt, documented, "python") is None
    renamed = documented.replace("lo = bisect_right(a, x, lo, hi)", "low = bisect_right(a, x, lo, hi)", 1)
    assert renamed != documented
    assert code_changes(excerpt, renamed, "python")[0] == "code_changed"
    assert code_changes(excerpt, documented[:-40], "python")[0] == "code_changed"  # no longer parses
    assert code_changes(excerpt, excerpt, "python") == ("no_documentation", "no docstring or comment was added")
    c_source = "int add(int a, int b) {\n    return a + b;\n}\n"
    assert code_changes(c_source, "/* Sum of a and b. */\nint add(int a, int b) {\n    return a + b; // sum\n}\n",
                        "c") is None
    assert code_changes(c_source, "/* Sum. */\nint add(int a, int b) {\n    return a - b;\n}\n", "c")[0] == \
        "code_changed"


def test_similarity_rule(embedder, burma_facts: str, rugby: str):
    rewrite = ("Myanmar is a Southeast Asian country on the Indian Peninsula. Its land borders run 5,876 km, "
               "shared with China, Thailand, India, Laos and Bangladesh, and its coast is 1,930 km long. It "
               "became independent from Britain in 1948.")
    unrelated = _paragraph(rugby, "Learning Disability Rugby League is")
    sims = similarities(embedder, [rewrite, unrelated], [burma_facts, burma_facts])
    threshold = L3Settings().min_similarity["rewrite"]
    assert sims[0] >= threshold > sims[1]


# ---------------------------------------------------------------------------------------------- budget


def test_budget_reserve_and_settle():
    budget = TokenBudget(100)
    assert budget.reserve(60) and not budget.reserve(41) and budget.available == 40
    budget.settle(60, 35, "generate")
    assert budget.spent == 35 and budget.available == 65
    with pytest.raises(RuntimeError, match="reserved only"):
        budget.reserve(10)
        budget.settle(10, 11, "judge")
    assert budget.report()["spent_by_kind"] == {"generate": 35}


# ---------------------------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_judge_reads_yes_no_probabilities_from_the_real_model(llm, burma_facts: str):
    pairs = [(burma_facts, "Myanmar borders China and Thailand."),
             (burma_facts, "Myanmar is an island in the Pacific Ocean.")]
    budget = TokenBudget(10_000)
    probs = judge_pairs(llm, pairs, budget, calibrated=True)
    assert all(p is not None and 0.0 < p < 1.0 for p in probs)
    expected = sum(judge_cost(llm, judge_prompt(e, c)) for e, c in [(burma_facts, "N/A"), *pairs])
    assert budget.spent == expected == budget.report()["spent_by_kind"]["judge"]
    raw = judge_pairs(llm, pairs, None, calibrated=False)
    assert probs != raw  # calibration moved them
    assert calibrate(0.3, 0.3) == pytest.approx(0.5)
    # a budget that pays for the calibration prompt only: no pair can be judged, nothing is overspent
    tight = TokenBudget(judge_cost(llm, judge_prompt(burma_facts, "N/A")) + 5)
    assert judge_pairs(llm, pairs, tight) == [None, None]
    assert tight.spent <= tight.limit


@pytest.mark.slow
def test_refine_partition_respects_the_budget_and_accounts_for_every_output(llm, embedder, burma, rugby):
    docs = [_doc("burma", burma, score=4.0), _doc("rugby", rugby, score=3.5), _doc("low", rugby[::-1], score=1.0)]
    config = L3Settings(formats={"en": ["qa"]}, max_new_tokens=40, min_new_tokens=8, batch_size=1,
                      max_source_chars=500, judge=False)
    # room for the first output in full and only 12 new tokens of the second (the judge is tested above)
    prompts = []
    for doc in docs[:2]:
        span = source_span(doc["text"], "en", "python", config.max_source_chars)
        prompts.append(build_prompt("qa", variant_for(doc["doc_id"], "qa"), "en", doc["text"][span[0]:span[1]]))
    first_in, second_in = (prompt_tokens(llm, p) for p in prompts)
    budget = first_in + 40 + second_in + 12
    kept, rejected, stats = refine_partition(docs, llm, embedder, replace(config, budget_tokens=budget))

    assert 0 < stats.spent_tokens <= budget
    assert stats.budget_exhausted is True
    assert stats.docs_refined == 2 and stats.docs_not_refined == {"budget": 1}
    assert stats.outputs == len(kept) + len(rejected) == 2
    outputs = {r["parent_ids"][0]: r["signals"]["l3"] for r in kept + rejected}
    assert set(outputs) == {"burma", "rugby"}  # best-scored first; the weakest was never promoted
    first, second = outputs["burma"], outputs["rugby"]
    assert (first["tokens_in"], second["tokens_in"]) == (first_in, second_in)
    assert first["tokens_out"] <= 40
    left = budget - first_in - first["tokens_out"] - second_in
    assert second["tokens_out"] <= min(40, left)  # max_new_tokens capped by the remaining budget
    assert stats.spent_by_kind["generate"] == sum(
        r["signals"]["l3"]["tokens_in"] + r["signals"]["l3"]["tokens_out"] for r in kept + rejected)
    for rec in kept + rejected:
        l3 = rec["signals"]["l3"]
        assert rec["doc_id"] == derive_doc_id("L3", rec["parent_ids"], variant=f"qa:{l3['variant']}")
        assert rec["tier"] == "L3" and rec["domain"] == "en" and rec["batch"] == "b1"
        assert l3["format"] == "qa" and l3["prompt_version"] == PROMPT_VERSION and l3["tokens_in"] > 0
        assert rec["models"]["l3"]["llm"] == llm.model_id and rec["models"]["l3"]["backend"] == "transformers"
    for rec in rejected:
        assert rec["reason"] in PARSE_REASONS | VERIFY_REASONS and rec["stage"].startswith("l3_")
    for rec in kept:
        assert rec["signals"]["l3"]["verification"]["similarity"] >= 0.5
        assert rec["signals"]["l3"]["fields"]["question"] in rec["text"]
    to_table(kept)
    to_table(rejected, rejected=True)


@pytest.mark.slow
def test_empty_upstream_gives_empty_valid_partitions(llm, embedder):
    kept, rejected, stats = refine_partition([], llm, embedder, L3Settings())
    assert kept == rejected == [] and stats.outputs == 0 and stats.spent_tokens == 0
    assert to_table(kept).num_rows == 0 and to_table(rejected, rejected=True).num_rows == 0
    kept, rejected, stats = build_l4_partition([], llm, embedder, L4Settings())
    assert kept == rejected == [] and stats.kept == 0 and stats.spent_tokens == 0


@pytest.mark.slow
def test_l4_llm_extraction_stays_in_budget_and_keeps_only_verified_items(llm, embedder, burma, rugby):
    docs = [_doc("burma", burma, score=4.0), _doc("rugby", rugby, score=3.0)]
    config = L4Settings(budget_tokens=1600, max_new_tokens=48, max_source_chars=500, batch_size=2,
                      judge_reserve_tokens=400)
    kept, rejected, stats = build_l4_partition(docs, llm, embedder, config)
    assert 0 < stats.spent_tokens <= 1600 and stats.llm_calls >= 1
    sources = {d["doc_id"]: d["text"] for d in docs}
    for rec in kept:
        assert evidence_problems(rec, sources) == []
    for rec in rejected:
        assert rec["stage"] in ("l4_extract", "l4_check", "l4_verify") and rec["reason"]
        assert (rec["stage"] == "l4_check") == rec["reason"].startswith("l4_check:")
    members = sum(r["signals"]["l4"]["members"] for r in kept)
    assert members + len(rejected) == stats.extracted.get("rule", 0) + stats.extracted.get("llm", 0) + \
        stats.extracted.get("llm_failed_outputs", 0)


# ---------------------------------------------------------------------------------------------- L4


def test_rule_extraction_points_at_real_text(burma, kaon, bisect_source):
    config = L4Settings()
    items = rule_items(_doc("burma", burma), config)
    assert "myanmar is a country in Southeast Asia, northwestern Indian Peninsula." in [i.text for i in items]
    for item in items:
        assert burma[item.start:item.end] == item.cited and item.method == "rule:definition"
    code = rule_items(_doc("bisect", bisect_source, domain="code", meta={"language": "python"}), config)
    names = {i.term for i in code}
    assert {"insort_right", "bisect_right", "insort_left", "bisect_left"} <= names
    for item in code:
        assert item.cited.startswith(f"def {item.term}(") and item.cited.endswith('"""')
    latex = ("Some intro.\n\\begin{theorem}[Fermat]\\label{thm:f} If $p$ is prime and $p \\nmid a$, then "
             "$a^{p-1} \\equiv 1 \\pmod p$.\n\\end{theorem}\n")
    (thm,) = rule_items(_doc("m", latex, domain="math"), config)
    assert thm.kind == "theorem" and thm.term == "Fermat" and latex[thm.start:thm.end] == thm.cited


@pytest.mark.parametrize(("sentence", "term"), [
    ("A cursor is a control structure that enables traversal over the records in a database.", "cursor"),
    ("Myanmar (Burma) is a country in Southeast Asia with long borders.", "Myanmar"),
    ("Photosynthesis refers to the process by which plants turn light into chemical energy.", "Photosynthesis"),
    ("Obviously there is a limit to how much nicer doctors can be.", None),
    ("Then it is a good idea to book the tickets early.", None),
    ("This is a great way to spend a weekend with the family.", None),
    ("Recently the market is a place of constant change for traders.", None),
    ("光合作用是指绿色植物利用光能把二氧化碳和水转化成有机物的过程。", "光合作用"),
    ("因为我是一个很喜欢旅行的人，所以每年都会出去走走。", None),
    ("这是一个非常好的问题，值得我们认真思考。", None),
])
def test_definition_rule_needs_a_real_term(sentence: str, term: str | None):
    found = definition_term(sentence)
    assert (found[0] if found else None) == term


def test_sentence_spans_and_locate(burma):
    spans = sentence_spans(burma)
    assert all(burma[s:e] == burma[s:e].strip() for s, e in spans)
    texts = [burma[s:e] for s, e in spans]
    assert "The coastline is 1,930 km long." in texts
    found = locate("Myanmar's coast is 1,930 km long.", burma, spans, 0.6)
    assert found is not None and burma[found[0]:found[1]] == "The coastline is 1,930 km long."
    assert locate("Myanmar has a famous football team.", burma, spans, 0.6) is None


def test_evidence_resolution_pass_and_fail(embedder, burma):
    doc = _doc("burma", burma)
    items = rule_items(doc, L4Settings())
    records, _ = organize(items, embedder)
    sources = {"burma": burma}
    assert records and all(evidence_problems(r, sources) == [] for r in records)
    bad = json.loads(json.dumps(records[0]))
    bad["signals"]["l4"]["evidence"][0]["start"] += 1
    assert "reads" in evidence_problems(bad, sources)[0]
    bad["signals"]["l4"]["evidence"][0]["end"] = len(burma) + 10
    assert "outside its text" in evidence_problems(bad, sources)[0]
    assert "not found" in evidence_problems(records[0], {"other": burma})[0]
    serialized = to_table(records).to_pylist()[0]  # signals as a JSON string, as read back from Parquet
    assert evidence_problems(serialized, sources) == []


def test_verify_items_rejects_bad_spans_and_missing_terms(burma):
    s = burma.index("The coastline is 1,930 km long.")
    good = Item("fact", "The coastline of Myanmar is 1,930 km long.", "burma", "L2", "en", "b1", s, s + 31,
                burma[s:s + 31], "rule:test")
    shifted = Item("fact", good.text, "burma", "L2", "en", "b1", s + 2, s + 33, burma[s:s + 31], "rule:test")
    unsupported = Item("fact", "Myanmar's beaches attract surfers every monsoon.", "burma", "L2", "en", "b1", s,
                       s + 31, burma[s:s + 31], "rule:test")
    passed, failed = verify_items([good, shifted, unsupported], {"burma": burma}, None, L4Settings())
    assert passed == [good] and good.verification["term_coverage"] >= 0.6
    assert [(i is shifted, r) for i, r, _ in failed][0] == (True, "span_mismatch")
    assert failed[1][0] is unsupported and failed[1][1] == "terms_missing"


def test_duplicate_facts_merge_across_documents_and_batches(embedder, burma, rugby):
    sentence = "myanmar is a country in Southeast Asia, northwestern Indian Peninsula."
    # the same definition syndicated into a second page of another batch
    second = _paragraph(rugby, "Learning Disability Rugby League is") + "\n" + sentence + "\n"
    docs = [_doc("burma", burma, batch="b1"), _doc("rugby", second, batch="b2")]
    items = [i for d in docs for i in rule_items(d, L4Settings())]
    records, stats = organize(list(reversed(items)), embedder)
    (merged,) = [r for r in records if r["text"] == sentence]
    l4 = merged["signals"]["l4"]
    assert l4["support"] == 2 and l4["members"] == 2
    assert {p["doc_id"] for p in l4["evidence"]} == {"burma", "rugby"} == set(merged["parent_ids"])
    assert merged["batch"] == "b1"  # the earliest evidence represents it
    assert all(evidence_problems(r, {"burma": burma, "rugby": second}) == [] for r in records)
    assert stats["merged"] == 1 and stats["items_in"] == len(items)
    assert records == organize(items, embedder)[0]  # input order does not matter
    # different terms are never merged, however alike the wording
    rugby_def = [r for r in records if r["text"].startswith("Learning Disability Rugby League")]
    assert len(rugby_def) == 1 and rugby_def[0]["signals"]["l4"]["support"] == 1
    assert l4["topic"] == "geography"


def test_index_search_returns_the_right_item(tmp_path, embedder, burma, rugby, bisect_source):
    docs = [_doc("burma", burma), _doc("rugby", rugby),
            _doc("bisect", bisect_source, domain="code", meta={"language": "python"})]
    records, _ = organize([i for d in docs for i in rule_items(d, L4Settings())], embedder)
    index = L4Index.build(records, embedder)
    hit = index.search("return the index where to insert an item in a sorted list", k=3)[0]
    assert hit.item["text"].startswith("bisect_") and hit.item["evidence"][0]["doc_id"] == "bisect"
    hit = index.search("Which is the largest city of Burma?", k=1)[0]
    assert hit.item["text"].startswith("Yangon is the ancient capital") and 0 < hit.score <= 1
    path = index.save(tmp_path / "l4-index")
    loaded = L4Index.load(path, embedder)
    assert len(loaded) == len(index) and loaded.search("Which is the largest city of Burma?", 1)[0].item == hit.item
    assert json.loads((path / "manifest.json").read_text())["kind"] == "flat"


def test_ivf_index_over_real_sentence_vectors(embedder, burma, rugby):
    sentences = [burma[s:e] for s, e in sentence_spans(burma)] + [rugby[s:e] for s, e in sentence_spans(rugby)]
    sentences = list(dict.fromkeys(x for x in sentences if len(x) > 20))
    vectors = embedder.encode(sentences)
    rng = np.random.default_rng(0)
    copies = np.repeat(vectors, 4, axis=0) + rng.normal(0, 0.002, (4 * len(vectors), vectors.shape[1]))
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    items = [{"text": sentences[i // 4], "row": i} for i in range(len(copies))]
    index = L4Index.from_vectors(copies.astype(np.float32), items, embedder, kind="ivf", nlist=2, nprobe=2)
    assert index.settings == {"kind": "ivf", "nlist": 2, "nprobe": 2}
    sims, ids = index.vectors.search(copies[:10].astype(np.float32), 1)
    assert list(ids[:, 0]) == list(range(10)) and np.all(sims[:, 0] > 0.99)
    assert math.isclose(float(index.search(sentences[0], 1)[0].score), 1.0, abs_tol=0.01)
