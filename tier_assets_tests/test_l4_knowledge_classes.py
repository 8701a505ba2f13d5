"""The L4 knowledge checks by failure class, on real candidates of the dev set's second draw.

Each case is a real sentence the rule extractor drew from ../shared/data (web and news
text, Chinese articles, PlanetMath) or the standard library, labelled by hand
(``bench/data/l4/dev.jsonl``): the class it fails for, or that it is knowledge and
survives. Also: the symbols a math statement leaves unintroduced, the entity a Chinese
clause is about (the demo's 白居易 sentence), and the knowledge scorer: in the L4 stage where the
recipe turns it on (en) and in ``evaluate-l4``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tier_assets.cli_l4 import main
from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.checks import knowledge_problems
from tier_assets.curation.l4.evaluate import evaluate_file, evaluate_rows
from tier_assets.curation.l4.extract import kind_and_subject, rule_items, zh_entity
from tier_assets.curation.l4.math_symbols import unintroduced
from tier_assets.curation.l4.scorer import NOT_KNOWLEDGE_SCORER, KnowledgeScorer
from tier_assets.curation.l4.settings import L4Settings, load_l4_settings

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "bench" / "data" / "l4" / "dev.jsonl"


def _failure(text: str, domain: str) -> tuple[str, str] | None:
    kind, subject = kind_and_subject(text, domain)
    problems = knowledge_problems(text, domain, kind, subject)
    return (problems[0].reason, problems[0].detail) if problems else None


@pytest.mark.parametrize(("text", "domain", "reason", "detail"), [
    # opinions: evaluative words, addressing the reader, a claim about doing something, hedged subjects, hearsay
    ("Honesty is a crucial leadership characteristic.", "en", "l4_check:opinion", "evaluative: 'crucial'"),
    ("Gid 504 is the special group with /proc access, you may want to put yourself in this group if you're an "
     "admin.", "en", "l4_check:opinion", "second person: 'you'"),
    ("Speaking against oppression is a democratic right, a civic duty and for believers, a religious obligation.",
     "en", "l4_check:opinion", "'Speaking against': a claim about doing something, not about a subject"),
    ("Common ghost sightings often refer to floating female figures dressed in white, with long hair and, "
     "sometimes, long fingernails.", "en", "l4_check:opinion",
     "the subject 'Common ghost sightings often' holds 'often': a hedged generalisation"),
    ("Carlineo is a convicted felon and possessed a loaded .45-caliber handgun, three rifles, two shotguns and "
     "hundreds of rounds of ammunition at his home, prosecutors said.", "en", "l4_check:opinion", "hedge: 'said'"),
    ("Michael Pogorsky has offered what is said to be an elementary proof of Fermat's last theorem.", "math",
     "l4_check:opinion", "hedge: 'what is said to be'"),
    ("文化自信是一个国家、一个民族发展中最基本、最深沉、最持久的力量。", "zh", "l4_check:opinion", "'最'"),
    ("推进中国式现代化是一项前无古人的开创性事业，为中国式现代化提供更为完善的制度保证。", "zh", "l4_check:opinion",
     "'前无古人'"),
    # fragments: a math sentence that stops where its formula or environment begins, list items
    ("For $s\\in\\mathbb{C}$, the \\emph{Dirichlet eta function} is defined as", "math", "l4_check:fragment",
     "stops before what it announces: 'defined as'"),
    ("An algebraic integer is called a \\emph{morphic number}, iff it satisfies a pair of equations \\begin{align}",
     "math", "l4_check:fragment", "stops before what it announces: '\\\\begin{align}'"),
    ("\\item The amount of \\textit{false witnesses}, i.e. numbers $a$ that report $N$ as a prime when it is not, "
     "is at most $\\frac{N}{4}$ instead of $\\frac{N}{2}$.", "math", "l4_check:fragment",
     "starts with markup '\\\\item'"),
    # context: discourse leads, symbols the statement never introduces, pointers into the page, no entity (zh)
    ("Next up is the Coloured Box Drum Dance performed with adorable drums!!", "en", "l4_check:context",
     "starts with 'Next': needs the surrounding text"),
    ("Let $p$ be prime and $m \\geq 1$. Then $p B_m$ is $p$-integral, and if $m \\geq 2$ is even, then "
     "$p B_m \\equiv S_m(p) \\pmod{p}$.", "math", "l4_check:context", "uses symbols it does not introduce: B, S"),
    ("The natural number $e$ is called the {\\em ramification index} of $f$ at $p$, and $p$ is said to be a "
     "{\\em branch point} of $f$ if $e > 1$.", "math", "l4_check:context", "uses symbols it does not introduce: f, p"),
    ("The fundamental character of level $n\\geq 1$ is the map $\\Psi_n : I_p \\to \\F_{p^n}^\\times$ given by "
     "Eq. (\\ref{psi}).", "math", "l4_check:context", "'Eq. (' points into the page"),
    ("人文知识分子的告诫是，不要因为影像符号的直观而疏远甚至放弃文字符号。", "zh", "l4_check:context",
     "'人文知识分子的告诫是，' announces a claim instead of making it"),
    ("阿拉伯的传统历法亦是阴历，并将月亮经过的星星划分成各宫星座。", "zh", "l4_check:context",
     "no entity before the copula: a clause, a list or a hedge is the subject"),
    # time-relative: a person's current post, an age, a market share, a month with no year
    ("Hege is the CEO of DH, the Spokane advertising, public relations and branding firm.", "en",
     "l4_check:time_relative", "'Hege is the CEO' with no date"),
    ("Evan Bush is a science reporter for NBC News.", "en", "l4_check:time_relative",
     "'Evan Bush is a science reporter' with no date"),
    ("Trump is 73 years old and is the oldest person ever elected to a first term as president.", "en",
     "l4_check:time_relative", "'73 years old' with no date"),
    ("The three biggest ISPs are the state-owned Vietnam Post and Telecommunications (VNPT), which holds 74 "
     "percent of the market.", "en", "l4_check:time_relative", "'74 percent of the market' with no date"),
    ("5月非製造業景氣判斷指數微升至正26，比前月高1點；未來3個月則預料有所轉差。", "zh", "l4_check:time_relative",
     "'5月' with no date"),
    # promotional: job-ad boilerplate
    ("Simpson County is an Equal Opportunity Employer.", "en", "l4_check:promotional", "'Equal Opportunity Employer'"),
])
def test_failure_classes_on_real_candidates(text: str, domain: str, reason: str, detail: str):
    assert _failure(text, domain) == (reason, detail)


@pytest.mark.parametrize(("text", "domain"), [
    ("Pecos is a village in San Miguel County, New Mexico, United States.", "en"),
    ('Liquid chromatography is a process wherein a sample having unknown components is forced to migrate through '
     'an elongated "column."', "en"),
    ("Feather duvet lung is a type of \"hypersensitive pneumonitis\" in which the body's immune response to a "
     "particular outside trigger causes the lung's air sacs and airways to become inflamed.", "en"),
    # math names use ordinary words ("perfect", "wonderful"); symbols introduced by a noun, "where", "with", "\in"
    ("A \\emph{perfect square} is the square of an integer.", "math"),
    ("A {\\em Proth number} $p$ is a number of the form $k2^m + 1$, where $k$ is odd (e.g., $k = 2n + 1$ with an "
     "integer $n > (-1)$), $m$ is also an integer and $2^m > k$.", "math"),
    ("A number $\\alpha \\in \\mathbb{C}$ is called an \\emph{algebraic number} if there exists a polynomial "
     "$f(x) = a_n x^n + \\cdots + a_0$ such that $a_0, \\ldots , a_n$, not all zero, are in $\\mathbb{Q}$ and "
     "$f(\\alpha )=0$.", "math"),
    ("An odd prime $p$ can be written $p=x^2+y^2$ with $x,y\\in\\BZ$ if and only if $p \\equiv 1 \\pmod 4$.", "math"),
    ("阿尔忒弥斯是宙斯和勒托的女儿，是太阳神阿波罗的孪生姐妹。", "zh"),
    ("现代化是与工业化大生产方式相配套的，包括市场化、民主化、法治化、城镇化等多个方面发展内容的综合概念。", "zh"),
    ("shlex.quote(s): Return a shell-escaped version of the string *s*.", "code"),

    # encyclopedia sentences near the new rules: a role's own definition, a composition in percent, terms that
    # hold a marker word, names with "!", "-jing" or an adverb, math's "is said to be", zh terms with 比较 / 最 / 事业
    ("A mayor is the leader of a municipal government such as a city or town.", "en"),
    ("Sterling silver is an alloy of silver containing 92.5% by weight of silver and 7.5% of other metals.", "en"),
    ("An ideal gas is a theoretical gas composed of many randomly moving point particles.", "en"),
    ("A universally unique identifier is a 128-bit label used for information in computer systems.", "en"),
    ("The Palestinian Authority is recognized by the United Nations as a non-member observer state.", "en"),
    ("Yahoo! is a web services provider headquartered in Sunnyvale, California.", "en"),
    ("Just Dance is a rhythm game series developed and published by Ubisoft.", "en"),
    ("A set $X$ of integers is said to be sum-free if no two elements of $X$ sum to an element of $X$.", "math"),
    ("比较文学是跨越民族、语言和学科界限的文学研究。", "zh"),
    ("最惠国待遇是国际贸易协定中的一项原则。", "zh"),
    ("事业单位是指国家为了社会公益目的举办的社会服务组织。", "zh"),
])
def test_real_knowledge_and_reference_sentences_near_the_new_rules_survive(text: str, domain: str):
    assert _failure(text, domain) is None


def test_math_symbols_a_statement_leaves_unintroduced():
    assert unintroduced("Let $p$ be prime. Then $pB_m \\equiv S_m(p)$.") == ["B", "S", "m"]
    assert unintroduced("A prime number $p > 5$ such that $p^2 | F_{p - 1}$, with $F_n$ being the $n$th "
                        "Fibonacci number.") == []
    assert unintroduced("$x^4+y^4 =z^2$ has no solution in positive integers.") == []
    assert unintroduced("For all positive integers $n$, \\[n! = 1 + \\sum_{k = 1}^{n - 1} k \\cdot k!\\]") == []
    assert unintroduced("The interval $[a/b, c/d]$ is known as a Farey interval.") == ["a", "b", "c", "d"]
    assert unintroduced("No formula here.") == []


def test_zh_subject_is_the_entity_not_the_clause():
    html = (ROOT / "tier_assets" / "demo_data" / "zh" / "magic-html" /
            "9f4c1adb9f61d954f33a02ef1919248e69c007dcbe9d903a0e77b739779951da.html").read_text(encoding="utf-8")
    (text,) = re.findall(r"白居易祖籍[^<]*", html)
    doc = {"doc_id": "bai", "tier": "L2", "domain": "zh", "batch": "b1", "text": text, "signals": {}}
    items = rule_items(doc, L4Settings())
    item = next(i for i in items if i.text.startswith("白居易祖籍"))
    assert (item.kind, item.subject) == ("fact", "白居易")
    assert item.text == "白居易祖籍山西、陕西、出生于河南郑州新郑，葬于洛阳。" and text[item.start:item.end] == item.cited
    assert kind_and_subject("鲁迅，原名周树人，是中国现代文学的奠基人之一。", "zh") == ("fact", "鲁迅")
    assert kind_and_subject("成都是四川省的省会城市。", "zh") == ("fact", "成都")  # 都 of a place name is no adverb
    assert zh_entity("苹果、香蕉") is None and zh_entity("法国还将") is None and zh_entity("人才") == "人才"


def test_dev_set_second_draw_is_split_by_text_hash():
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 650 and not any("holdout" in r["source"] for r in rows)
    second = rows[250:]
    assert {r["domain"] for r in second} == {"en", "zh", "math", "code"} and len({r["text"] for r in rows}) == len(rows)
    for row in second:
        odd = int(hashlib.sha256(row["text"].encode("utf-8")).hexdigest()[:2], 16) % 2
        assert row["split"] == ("tune" if odd else "report")


@pytest.fixture(scope="module")
def embedder():
    from tier_assets.curation.models.embedder import get_embedder

    return get_embedder()


def test_knowledge_scorer_ranks_and_leaves_zh_to_the_rules(embedder):
    scorer = KnowledgeScorer.load()
    assert scorer.fit["split"] == "tune" and 0.2 <= scorer.threshold <= 0.8
    texts = ["Pecos is a village in San Miguel County, New Mexico, United States.",
             "Top speed is an electronically-limited 124 mph.",
             "阿尔忒弥斯是宙斯和勒托的女儿，是太阳神阿波罗的孪生姐妹。"]
    domains = ["en", "en", "zh"]
    subjects = [kind_and_subject(t, d)[1] for t, d in zip(texts, domains, strict=True)]
    scores = scorer.score(texts, domains, subjects, embedder)
    assert scores[2] is None and scores[0] is not None and scores[1] is not None
    assert scores[0] >= scorer.threshold > scores[1]
    report = evaluate_rows([{"text": t, "domain": d, "label": y} for t, d, y in zip(texts, domains, [1, 0, 1], strict=True)],
                           scores=scores, min_scores={"en": scorer.threshold, "zh": scorer.threshold})
    assert report["with_checks"]["overall"] == {"n": 3, "true_items": 2, "kept": 3, "precision": 0.6667,
                                                "recall": 1.0}
    assert report["with_scorer"]["overall"] == {"n": 3, "true_items": 2, "kept": 2, "precision": 1.0, "recall": 1.0}
    assert report["reasons"] == {NOT_KNOWLEDGE_SCORER: 1}


# real en candidates of the dev set's report split that pass every rule: labelled 0 (a judgement, a blurb)
# and 1 (reference sentences)
NOT_KNOWLEDGE = ["Trump is the wrecking ball that no one expected.",
                 "The Mavic Mini is the ideal combination of a capable drone in a small package."]
KNOWLEDGE = ["Grilo is a white variety that originates from the island of Sicily.",
             "Grapes are a non-climacteric type of fruit, generally occurring in clusters."]


def _source(doc_id: str, text: str) -> dict:
    return {"doc_id": doc_id, "parent_ids": [], "tier": "L2", "domain": "en", "batch": "b1", "text": text,
            "score": 3.0, "signals": {}, "models": {}}


def test_stage_rejects_what_the_scorer_reads_as_not_knowledge(embedder):
    docs = [_source(f"d{i}", text) for i, text in enumerate(NOT_KNOWLEDGE + KNOWLEDGE)]
    assert all(_failure(text, "en") is None for text in NOT_KNOWLEDGE + KNOWLEDGE)  # the rules pass all four
    on = load_l4_settings("en", {"llm_extraction": False})
    assert on.knowledge_scorer and on.min_knowledge_score == 0.25
    assert not any(load_l4_settings(d).knowledge_scorer for d in ("zh", "math", "code"))
    kept, rejected, stats = build_l4_partition(docs, None, embedder, on)
    assert sorted(r["text"] for r in kept) == sorted(KNOWLEDGE)
    scored = [r for r in rejected if r["reason"] == NOT_KNOWLEDGE_SCORER]
    assert sorted(r["text"] for r in scored) == sorted(NOT_KNOWLEDGE) and len(rejected) == 2
    assert {r["stage"] for r in scored} == {"l4_check"} and stats.reasons == {NOT_KNOWLEDGE_SCORER: 2}
    for record in kept + scored:
        verification = record["signals"]["l4"]["verification"]
        assert verification["knowledge_checks"] == "passed" and verification["min_knowledge_score"] == 0.25
        assert (verification["knowledge_score"] >= 0.25) == (record in kept)
    assert all(r["detail"].startswith("knowledge scorer P 0.") for r in scored)

    off = load_l4_settings("en", {"llm_extraction": False, "knowledge_scorer": False})
    kept_off, rejected_off, _ = build_l4_partition(docs, None, embedder, off)
    assert sorted(r["text"] for r in kept_off) == sorted(NOT_KNOWLEDGE + KNOWLEDGE) and not rejected_off
    assert all("knowledge_score" not in r["signals"]["l4"]["verification"] for r in kept_off)


def test_evaluate_l4_is_the_stage_and_no_scorer_the_rules(embedder, tmp_path: Path):
    rules = {"n": 336, "true_items": 137, "kept": 158, "precision": 0.7468, "recall": 0.8613}
    out = tmp_path / "rules.json"
    assert main(["evaluate-l4", str(DEV), "--split", "report", "--no-scorer", "--out", str(out)]) == 0
    alone = json.loads(out.read_text(encoding="utf-8"))
    assert alone["with_checks"]["overall"] == rules and "with_scorer" not in alone
    assert alone["scorer_domains"] is None and NOT_KNOWLEDGE_SCORER not in alone["reasons"]

    stage = evaluate_file(DEV, "report", embedder=embedder)
    assert stage["scorer_domains"] == {"en": 0.25}
    assert stage["with_checks"] == alone["with_checks"]
    assert stage["with_scorer"]["overall"] == {"n": 336, "true_items": 137, "kept": 147, "precision": 0.7823,
                                               "recall": 0.8394}
    for domain in ("zh", "math", "code"):  # the scorer is off there: the rules decide
        assert stage["with_scorer"]["by_domain"][domain] == stage["with_checks"]["by_domain"][domain]
    assert stage["with_scorer"]["by_domain"]["en"] == {"n": 102, "true_items": 19, "kept": 23, "precision": 0.5652,
                                                       "recall": 0.6842}
    assert stage["reasons"][NOT_KNOWLEDGE_SCORER] == 11
