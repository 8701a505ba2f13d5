"""L4 holds knowledge: item kinds and subjects, knowledge checks, zh and math extraction, ``evaluate-l4``.

Check examples are the sentences the issue found in the demo's L4 (real web text);
hard negatives are real definitions that must survive. Extraction runs on real
text: the Python standard library, Chinese articles and PlanetMath entries.
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

from tier_assets.cli_l4 import main
from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.checks import knowledge_problems
from tier_assets.curation.l4.extract import kind_and_subject, module_name, rule_items
from tier_assets.curation.l4.settings import L4Settings

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _doc(doc_id: str, text: str, domain: str = "en", **extra) -> dict:
    return {"doc_id": doc_id, "parent_ids": [], "tier": "L2", "domain": domain, "batch": "b1", "text": text,
            "score": 3.0, "signals": {}, "models": {}, **extra}


def _reason(text: str, domain: str = "en") -> str | None:
    kind, subject = kind_and_subject(text, domain)
    problems = knowledge_problems(text, domain, kind, subject)
    return problems[0].reason if problems else None


@pytest.mark.parametrize(("text", "reason"), [
    ("Trump is a superb Manchurian Candidate and his rants against Beijing are exactly what one would expect "
     "from a deep asset.", "l4_check:opinion"),
    ("Pontefract is a fairly tightly-knit community which has weathered a lot over the years.", "l4_check:opinion"),
    ("I think the Nikon D750 is a camera for every beginner.", "l4_check:opinion"),
    ("Listed below are a couple of years by.", "l4_check:fragment"),
    ("belonging to family Euphorbiaceae is an erect shrub, sometimes cultivated in gardens[1].", "l4_check:fragment"),
    ("The word refers to the motion of the stone across the ice.", "l4_check:context"),
    ("Carol is a part-time teacher of physics/science in a secondary school in Sheffield.", "l4_check:context"),
    ("The first method is the most obvious one, take the image and scale it.", "l4_check:context"),
    ("However, the river is a natural stream of fresh water.", "l4_check:context"),
    ("The latest victims of the clampdown are the staff, executives and editors of independent media "
     "organizations.", "l4_check:time_relative"),
    ("Coal is an industry that has been on the brink of collapse for years.", "l4_check:time_relative"),
    ("Acme Widgets are available with free shipping on every order, click here to shop.", "l4_check:promotional"),
    ("光合作用是指绿色植物利用光能把二氧化碳和水转化成有机物的过程。", "l4_check:wrong_language"),
    (" ".join(["Myanmar is a country in Southeast Asia with long borders."] * 12), "l4_check:too_long"),
])
def test_each_check_names_its_reason(text: str, reason: str):
    assert _reason(text) == reason


@pytest.mark.parametrize(("text", "domain", "reason"), [
    ("Myanmar is a country in Southeast Asia.", "zh", "l4_check:wrong_language"),
    ("这是一个非常好的问题，值得我们认真思考。", "zh", "l4_check:context"),
    ("我觉得北京是中国最美的城市之一。", "zh", "l4_check:opinion"),
    ("目前研究较多的是利用故障产生的磁场信号作为判据。", "zh", "l4_check:time_relative"),
    ("彩票平台是最好的娱乐方式，欢迎注册开户领取首存优惠。", "zh", "l4_check:opinion"),
    ("The image of $K$ in $\\Rprod_{v\\in P_f} \\o_v$ is dense.", "math", "l4_check:context"),
    ("Since $p$ is an odd prime, it has a representation under Lemma 1.", "math", "l4_check:context"),
    ("logging.Handler.close(self): Closes.", "code", "l4_check:fragment"),
    ("http.cookies.BaseCookie.value_encode(self, val): real_value, coded_value = value_encode(VALUE) Called "
     "prior to setting a cookie's value.", "code", "l4_check:fragment"),
])
def test_checks_in_every_domain(text: str, domain: str, reason: str):
    assert _reason(text, domain) == reason


@pytest.mark.parametrize(("text", "domain"), [
    # "this" later in a real definition is not a deictic subject
    ("A cursor is a control structure that enables traversal over the records in a database, and this makes "
     "row-by-row processing possible.", "en"),
    # a time claim with its date is not time-relative
    ("In 2019 the latest census counted 54 million people in Myanmar.", "en"),
    ("Kamas is an extinct Samoyedic language (Uralic family).", "en"),
    ("myanmar is a country in Southeast Asia, northwestern Indian Peninsula.", "en"),
    ("The Ocean Planet is a traveling exhibition from the Smithsonian Institution which opened in Washington DC "
     "on April 22, 1995.", "en"),
    ("CEIC.ac.cn是由中国地震台网中心资助的科研项目的研究成果，于2006年1月上线运行，并陆续完善。", "zh"),
    ("We call $n$ abundant if $\\sigma(n) > 2n$, where $\\sigma$ is the sum of the divisors of $n$.", "math"),
    ("A Gr\\\"ossencharacter $\\psi$ on $K$ is a continuous homomorphism $\\psi: A_K \\to \\mathbb{C}^*$ which is "
     "trivial on $K^*$, i.e. $\\psi(x) = 1$ for $x \\in K^*$.", "math"),
    ("heapq.heappush(heap, item): Push item onto heap, maintaining the heap invariant.", "code"),
    ("collections.Counter.elements(self): Iterator over elements repeating each as many times as its count.",
     "code"),
])
def test_real_knowledge_survives(text: str, domain: str):
    assert _reason(text, domain) is None


def test_kinds_and_subjects_of_candidates():
    assert kind_and_subject("Q: Who lays the eggs? A: The queen.", "en") == ("qa", "Who lays the eggs?")
    assert kind_and_subject("heapq.heappush(heap, item): Push item onto heap.", "code") == \
        ("procedure", "heapq.heappush")
    assert kind_and_subject("collections.UserList: A wrapper around list objects.", "code") == \
        ("definition", "collections.UserList")
    assert kind_and_subject("Kamas is an extinct Samoyedic language (Uralic family).", "en") == \
        ("definition", "Kamas")
    assert kind_and_subject("北京是中国的首都。", "zh") == ("fact", "北京")
    assert kind_and_subject("光合作用是指绿色植物利用光能的过程。", "zh") == ("definition", "光合作用")
    # the subject is the entity, not the clause before the verb (the demo's "白居易祖籍山西、陕西、")
    assert kind_and_subject("白居易祖籍山西、陕西、出生于河南郑州新郑，葬于洛阳。", "zh") == ("fact", "白居易")
    assert kind_and_subject("A positive integer $n$ is called a perfect number if $\\sigma(n) = 2n$.", "math") == \
        ("definition", "perfect number")


def test_code_items_name_their_qualified_subject():
    source = (STDLIB / "email" / "message.py").read_text(encoding="utf-8")
    doc = _doc("msg", source, domain="code", meta={"language": "python"}, source_file="python-stdlib/email/message.py")
    items = {i.subject: i for i in rule_items(doc, L4Settings(max_items_per_doc=500))}
    item = items["email.message.Message.items"]
    assert item.kind == "procedure" and item.term == "items"
    assert item.text == "email.message.Message.items(self): Get all the message's header fields and values."
    assert item.claim() == "Get all the message's header fields and values."
    assert items["email.message.Message"].kind == "definition"
    assert source[item.start:item.end] == item.cited and item.cited.startswith("def items(self):")
    assert module_name("python-stdlib/json/__init__.py") == "json" and module_name("bisect.py") == "bisect"
    assert module_name(None) is None


def test_kinds_subjects_and_check_rejections_are_stored(shared_data: Path):
    from tier_assets.curation.models.embedder import get_embedder

    rows = [json.loads(line) for line in (shared_data / "web" / "redpajama-cc-2023-06-sample.jsonl").read_text().splitlines()]
    code = (STDLIB / "heapq.py").read_text(encoding="utf-8")
    docs = [_doc("burma", rows[8]["text"]), _doc("rugby", rows[0]["text"]),
            _doc("heapq", code, domain="code", meta={"language": "python"}, source_file="python-stdlib/heapq.py")]
    kept, rejected, stats = build_l4_partition(docs, None, get_embedder(), L4Settings(llm_extraction=False))
    by_text = {r["text"]: r for r in kept}
    burma = by_text["myanmar is a country in Southeast Asia, northwestern Indian Peninsula."]["signals"]["l4"]
    assert (burma["kind"], burma["subject"], burma["claim"]) == \
        ("definition", "myanmar", "myanmar is a country in Southeast Asia, northwestern Indian Peninsula.")
    push = next(r for r in kept if r["signals"]["l4"]["subject"] == "heapq.heappush")
    assert push["signals"]["l4"]["kind"] == "procedure" and push["title"] == "heapq.heappush"
    assert push["signals"]["l4"]["claim"] == "Push item onto heap, maintaining the heap invariant."
    checked = [r for r in rejected if r["stage"] == "l4_check"]
    assert checked and all(r["reason"].startswith("l4_check:") and r["detail"] for r in checked)
    latest = [r for r in rejected if "the main highlight" in r["text"] or r["text"].startswith("burma is the ancient")]
    assert latest and {r["reason"] for r in latest} <= {"l4_check:opinion", "l4_check:time_relative"}
    assert all(r["signals"]["l4"]["verification"]["knowledge_checks"] == "passed" for r in kept)
    assert stats.reasons["l4_check:time_relative"] == 2  # "... preserved intact until now", "nascent"


def test_zh_extraction_on_real_articles(shared_data: Path):
    base = json.loads((shared_data / "html" / "magic-html-zh" / "article" / "base.json").read_text(encoding="utf-8"))
    (text,) = [r["content"] for r in base.values() if "文明是人类在认识世界和改造世界中创造" in r["content"]]
    items = rule_items(_doc("zh", text, domain="zh"), L4Settings(max_items_per_doc=200))
    found = {i.text: i for i in items}
    item = found["文明是人类在认识世界和改造世界中创造的有形和无形的积极成果的总和。"]
    assert (item.kind, item.subject) == ("fact", "文明") and text[item.start:item.end] == item.cited
    definitions = [i for i in items if i.kind == "definition"]
    assert any(i.text.startswith("文明指人类社会进步的状态") and i.subject == "文明" for i in definitions)
    kept = [i for i in items if not knowledge_problems(i.text, "zh", i.kind, i.subject)]
    assert item in kept and len(kept) < len(items)  # the slogans and clauses go


def test_math_extraction_on_planetmath(shared_data: Path):
    path = shared_data / "math" / "planetmath-number-theory-sample.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    (text,) = [r["text"] for r in rows if r["id"] == "planetmath:TopicsOnIdealClassGroupsAndDiscriminants"]
    items = rule_items(_doc("pm", text, domain="math"), L4Settings(max_items_per_doc=200))
    by_subject = {i.subject: i for i in items}
    item = by_subject["class number"]
    assert item.kind == "definition" and item.method == "rule:math"
    assert "$|\\Cl(K)|$" in item.text and "$h_K$" in item.text  # formulas kept
    ring = by_subject["ring of integers"]
    assert ring.text == "The ring of integers of $K$ is the analogue of $\\Ints$ in $\\Rats$."
    assert text[ring.start:ring.end] == ring.cited
    latex = ("Intro.\n\\begin{lemma}[Euclid] If a prime $p$ divides $ab$, then $p \\mid a$ or $p \\mid b$.\n"
             "\\end{lemma}\n")
    (lemma,) = rule_items(_doc("m", latex, domain="math"), L4Settings())
    assert (lemma.kind, lemma.subject) == ("theorem", "Euclid") and "$p \\mid a$" in lemma.text


def test_evaluate_l4_command(tmp_path: Path, capsys):
    path = tmp_path / "dev.jsonl"
    rows = [
        {"text": "Kamas is an extinct Samoyedic language (Uralic family).", "domain": "en", "label": 1},
        {"text": "The word refers to the motion of the stone across the ice.", "domain": "en", "label": 0},
        {"text": "Trump is a superb Manchurian Candidate.", "domain": "en", "label": 0},
        {"text": "myanmar is a country in Southeast Asia, northwestern Indian Peninsula.", "domain": "en",
         "label": 1},
        {"text": "Ethics is a rule or moral that is present in every proposition or at every institution.",
         "domain": "en", "label": 0},
        {"text": "heapq.heappush(heap, item): Push item onto heap, maintaining the heap invariant.",
         "domain": "code", "label": 1},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "report.json"
    assert main(["evaluate-l4", str(path), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report
    checks, none = report["with_checks"], report["without_checks"]
    assert checks["overall"] == {"n": 6, "true_items": 3, "kept": 4, "precision": 0.75, "recall": 1.0}
    assert none["overall"] == {"n": 6, "true_items": 3, "kept": 6, "precision": 0.5, "recall": 1.0}
    assert checks["by_domain"]["code"]["precision"] == 1.0 and checks["by_kind"]["definition"]["n"] == 5
    # the stage's default: the knowledge scorer after the rules in en ("Ethics is a rule or moral ...")
    assert report["with_scorer"]["overall"] == {"n": 6, "true_items": 3, "kept": 3, "precision": 1.0, "recall": 1.0}
    assert report["reasons"] == {"l4_check:context": 1, "l4_check:opinion": 1, "l4_check:not_knowledge_scorer": 1}
    assert main(["evaluate-l4", str(path), "--no-scorer", "--out", str(out)]) == 0
    capsys.readouterr()
    rules = json.loads(out.read_text())
    assert rules["with_checks"] == checks and "with_scorer" not in rules
    assert rules["reasons"] == {"l4_check:context": 1, "l4_check:opinion": 1}

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "domain": "fr", "label": 1}\n', encoding="utf-8")
    assert main(["evaluate-l4", str(bad)]) == 2
    assert "bad.jsonl:1: 'domain' must be one of" in capsys.readouterr().err


def test_dev_set_is_labelled_and_split():
    path = Path(__file__).resolve().parents[1] / "bench" / "data" / "l4" / "dev.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 200 and {r["domain"] for r in rows} == {"en", "zh", "math", "code"}
    assert {r["split"] for r in rows} == {"tune", "report"} and {r["label"] for r in rows} == {0, 1}
    assert not any("holdout" in r["source"] for r in rows)
