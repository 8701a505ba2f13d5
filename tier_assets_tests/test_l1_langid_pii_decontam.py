"""L1 language id, PII redaction and benchmark decontamination on real documents.

Documents come from the shared real-data folder (Common Crawl, CCNet, RedPajama,
the Pile, arXiv LaTeX, Chinese news pages, the Python standard library) and the
bundled GSM8K / MMLU / HumanEval test sets.
"""

from __future__ import annotations

import csv
import gzip
import json
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tier_assets.curation.l1.decontam import (
    DEFAULT_BENCHMARKS_DIR,
    BenchmarkIndex,
    DecontamConfig,
    Decontaminator,
    load_benchmarks,
    read_benchmarks,
)
from tier_assets.curation.l1.langid import LangIdConfig, LanguageIdentifier
from tier_assets.curation.l1.pii import PIIConfig, PIIRedactor
from tier_assets.curation.pipeline import Pipeline
from tier_assets.curation.schema import dumps, empty_record, stable_id

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
STDLIB = Path(sysconfig.get_paths()["stdlib"])

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")


def jsonl(rel: str) -> list[dict[str, Any]]:
    path = SHARED / rel
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def make_doc(text: str, domain: str, **fields: Any) -> dict[str, Any]:
    return empty_record(
        doc_id=stable_id(domain, text), tier="L1", domain=domain, batch="b0", text=text, **fields
    )


def cc_doc(doc_id: str) -> str:
    return next(d["text"] for d in jsonl("web/cc-main-2019-30-dolma.jsonl.gz") if d["id"] == doc_id)


def zh_article(sha: str) -> str:
    base = json.loads((SHARED / "html/magic-html-zh/article/base.json").read_text(encoding="utf-8"))
    return base[sha]["content"]


def english_docs() -> list[str]:
    return [
        d["text"]
        for rel in (
            "web/ccnet-en-head-0091.jsonl.gz",
            "web/redpajama-c4-sample.jsonl",
            "web/redpajama-cc-2023-06-sample.jsonl",
            "web/pile-nih-sample.jsonl",
            "web/pile-uspto-sample.jsonl",
        )
        for d in jsonl(rel)
    ]


def arxiv_docs() -> list[str]:
    return [d["text"] for d in jsonl("math/arxiv-latex-sample.jsonl")]


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return LanguageIdentifier()


# ---------------------------------------------------------------- language id


def test_english_web_docs_are_kept_as_english(lid: LanguageIdentifier) -> None:
    docs = [make_doc(t, "en") for t in english_docs()]
    result = lid.process(docs)
    assert len(result.kept) == 50 and result.rejected == []
    assert {d["lang"] for d in result.kept} == {"en"}
    assert min(d["lang_score"] for d in result.kept) > 0.95


def test_french_and_russian_pages_rejected_in_en_domain(lid: LanguageIdentifier) -> None:
    # fr.wikipedia "Cathédrale Saint-Étienne de Vienne"; Russian news on a court ruling.
    french = make_doc(cc_doc("ggvnfn4gidn2vbph52fvxig63q6kqhdt"), "en")
    russian = make_doc(cc_doc("ngljtckyg42huf4hwy6dyunw467lrpy4"), "en")
    result = lid.process([french, russian])
    assert result.kept == []
    assert [(d["stage"], d["reason"], d["detail"]) for d in result.rejected] == [
        ("langid", "language_mismatch", "lang=fr score=1.00 expected=en"),
        ("langid", "language_mismatch", "lang=ru score=1.00 expected=en"),
    ]
    assert (french["lang"], russian["lang"]) == ("fr", "ru")


def test_expected_languages_are_overridable(lid: LanguageIdentifier) -> None:
    config = LangIdConfig(expected={"en": ["en", "fr"], "web": ["en"]})
    assert config.expected == {
        "en": ("en", "fr"),
        "zh": ("zh", "wuu", "yue"),
        "math": ("en", "zxx"),
        "code": None,
        "web": ("en",),
    }
    french = make_doc(cc_doc("ggvnfn4gidn2vbph52fvxig63q6kqhdt"), "en")
    assert LanguageIdentifier(config).check(french) is None
    assert french["lang"] == "fr"


def test_uncertain_foreign_doc_is_low_confidence_not_mismatch(lid: LanguageIdentifier) -> None:
    doc = make_doc(cc_doc("hr3jkv6f7vlybqms5q2cflkbecta7jhg"), "en")  # "Microsoft revela sus planes ..."
    verdict = lid.check(doc)
    assert doc["lang"] == "es" and doc["lang_score"] < 0.5
    assert verdict == ("language_low_confidence", f"lang=es score={doc['lang_score']:.2f} expected=en")


def test_chinese_news_kept_in_zh_domain_japanese_rejected(lid: LanguageIdentifier) -> None:
    mandarin = make_doc(zh_article("4e55eac42f97a6d97d14795891d2e24b715bec8c057c592a81c3d7ca08aafa10"), "zh")
    # Real Mandarin news that py3langid labels wuu (Wu Chinese): still the zh domain.
    wu_labelled = make_doc(
        zh_article("0d18823b30fc212dd2efa8b2afa5ac1b2a9f224bd050adff44b4371289d3db33"), "zh"
    )
    japanese = make_doc(zh_article("452b8128babdcbc570f7b2a9e1f0c33fdafaf93f6bf07a3ed60b7aa3c2dd79cb"), "zh")
    result = lid.process([mandarin, wu_labelled, japanese])
    assert [d["lang"] for d in result.kept] == ["zh", "wuu"]
    assert mandarin["lang_score"] > 0.9
    assert [(d["lang"], d["reason"], d["detail"]) for d in result.rejected] == [
        ("ja", "language_mismatch", "lang=ja score=1.00 expected=zh,wuu,yue")
    ]


def test_latex_is_stripped_before_identifying_math(lid: LanguageIdentifier) -> None:
    texts = arxiv_docs()
    pentagon = next(t for t in texts if t.startswith("\\section{The pentagon-wheel cocycle}"))
    opening = pentagon[:1500]  # \put, \circle, picture environments, then two sentences of prose
    raw_label, raw_score = lid.identify(opening, latex=False)
    label, score = lid.identify(opening, latex=True)
    assert raw_score is not None and raw_score < 0.5
    assert label == "en" and score is not None and score > 0.8
    doc = make_doc(opening, "math")
    assert lid.check(doc) is None and (doc["lang"], doc["lang_score"]) == ("en", score)
    # The prose-bearing arXiv papers are all English in the math domain.
    long_papers = [make_doc(t, "math") for t in texts if len(t) > 15_000]
    assert len(long_papers) == 4
    assert lid.process(long_papers).rejected == []
    assert {d["lang"] for d in long_papers} == {"en"}


def test_formula_only_text_is_zxx_kept_in_math_rejected_in_en(lid: LanguageIdentifier) -> None:
    formula = "$$x^4+x^2-Tx+1=0.$$\n\n$$\\alpha=[0,a_1,a_2,a_3,\\cdots,a_n,\\cdots]$$"  # from arXiv doc "Robbins quartic"
    math_doc, en_doc = make_doc(formula, "math"), make_doc(formula, "en")
    assert lid.check(math_doc) is None
    assert (math_doc["lang"], math_doc["lang_score"]) == ("zxx", None)
    verdict = lid.check(en_doc)  # en does not strip LaTeX: "alpha", "cdots" are scored, weakly
    assert verdict is not None and verdict[0] == "language_low_confidence" and en_doc["lang"] != "en"
    numbers = make_doc("12 + 7 = 19", "en")
    assert lid.check(numbers) == ("language_mismatch", "lang=zxx score=na expected=en")


def test_code_gets_programming_language_from_meta_and_no_check(lid: LanguageIdentifier) -> None:
    source = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
    stored = make_doc(source, "code", meta=dumps({"language": "python"}))  # meta as read back from Parquet
    in_flight = make_doc(source, "code", meta={"language": "python"})
    unknown = make_doc(source, "code")
    result = lid.process([stored, in_flight, unknown])
    assert result.rejected == []
    assert [(d["lang"], d["lang_score"]) for d in result.kept] == [
        ("python", None),
        ("python", None),
        (None, None),
    ]


def test_every_document_gets_lang_and_accounting_holds(lid: LanguageIdentifier) -> None:
    texts = [d["text"] for d in jsonl("web/cc-main-2019-30-dolma.jsonl.gz")]
    mixed = "Hello world 你好世界 Привет мир مرحبا שלום 😀\ud800 abc"  # mixed scripts, emoji, lone surrogate
    docs = [make_doc(t, "en") for t in texts] + [
        make_doc(mixed, "en"),
        make_doc("", "en"),
        make_doc("   ", "zh"),
    ]
    result = lid.process(docs)
    assert len(result.kept) + len(result.rejected) == len(docs)
    assert all(isinstance(d["lang"], str) for d in docs)
    assert {d["reason"] for d in result.rejected} == {"language_mismatch", "language_low_confidence"}
    assert 250 < len(result.kept) < 320  # the 2019-30 crawl sample is ~40% English
    assert all(d["lang"] == "en" for d in result.kept)
    assert (docs[-2]["lang"], docs[-2]["lang_score"]) == ("zxx", None)


def test_langid_config_validation() -> None:
    with pytest.raises(ValueError, match="min_confidence"):
        LangIdConfig(min_confidence=1.5)
    with pytest.raises(ValueError, match="prefix_chars"):
        LangIdConfig(prefix_chars=0)
    with pytest.raises(ValueError, match="min_letters"):
        LangIdConfig(min_letters=-1)
    with pytest.raises(ValueError, match="not the string"):
        LangIdConfig(expected={"en": "en"})
    with pytest.raises(ValueError, match="non-empty"):
        LangIdConfig(expected={"en": []})
    with pytest.raises(ValueError, match="latex_domains"):
        LangIdConfig(latex_domains="math")
    with pytest.raises(ValueError, match="does not know"):
        LanguageIdentifier(LangIdConfig(expected={"en": ["english"]}))
    with pytest.raises(ValueError, match="'web'"):
        LanguageIdentifier().check(make_doc("Some English text here for the check.", "web"))


# ---------------------------------------------------------------- PII


def test_pii_placeholders_counts_and_signals() -> None:
    text = (
        "Write to jane.doe@example.com or 李雷<li.lei@qq.com>. Our server is 93.184.216.34 "
        "(IPv6 2606:4700:4700::1111). Call +1 (555) 123-4567, 555-123-4567, +44 20 7946 0958, "
        "手机13800138000 或 138 0013 8000."
    )
    doc = make_doc(text, "en")
    PIIRedactor().process([doc])
    assert doc["text"] == (
        "Write to <EMAIL> or 李雷<<EMAIL>>. Our server is <IP_ADDRESS> "
        "(IPv6 <IP_ADDRESS>). Call <PHONE_NUMBER>, <PHONE_NUMBER>, <PHONE_NUMBER>, "
        "手机<PHONE_NUMBER> 或 <PHONE_NUMBER>."
    )
    assert doc["signals"] == {"pii": {"email": 2, "ip": 2, "phone": 5}, "mappers": ["pii"]}


def test_pii_on_a_real_contact_page() -> None:
    page = next(
        d["text"] for d in jsonl("web/cc-main-2019-30-dolma.jsonl.gz") if "Mönchebergstraße 48 E" in d["text"]
    )
    doc = make_doc(page, "en")
    PIIRedactor().process([doc])
    assert "Telefon: <PHONE_NUMBER>\nE-Mail: <EMAIL>" in doc["text"]
    assert "@" not in doc["text"].split("Telefon:")[1].split("Homepage")[0]
    assert doc["signals"]["pii"]["phone"] >= 1 and doc["signals"]["pii"]["email"] >= 1


def test_pii_clean_document_keeps_text_and_records_zero_counts() -> None:
    text = english_docs()[0]
    doc = make_doc(text, "en")
    PIIRedactor().process([doc])
    assert doc["text"] == text
    assert doc["signals"] == {"pii": {"email": 0, "ip": 0, "phone": 0}}  # no "mappers": nothing changed


@pytest.mark.parametrize(
    "text",
    [
        "Published 1990-2000; see 2019-07-15 and pages 123-456.",
        "ISBN 978-3-16-148410-0, ISBN 0-306-40615-2, ISBN 9783161484100, SSN-like 123-45-6789.",
        "Upgrade to version 1.2.3.4 (build 10.0.19041.1) or v2.7.18; python 3.11.4.",
        "Timestamps 12:30:45, MAC 00:1A:2B:3C:4D:5E, C++ std::vector, slice a[::2].",
        "Decimal('+35236450.6') and 1234567890123 and 3.14159265358979 and x = 2 +1 234.",
        "Private hosts 192.168.1.1, 10.0.0.1, 127.0.0.1, ::1, fe80::1ff:fe23:4567:890a, 224.0.0.251.",
        "Octets over 255: 300.1.2.3 and 256.256.256.256; reverse 1.0.0.127.in-addr.arpa.",
        "git@github.com:openai/human-eval.git is a remote, not a mailbox.",
        "The numbers 555 123 4567 in a table row.",
    ],
)
def test_pii_leaves_lookalikes_alone(text: str) -> None:
    assert PIIRedactor().redact(text, "en") == (text, {"email": 0, "ip": 0, "phone": 0})


def test_pii_no_false_positives_on_real_math_and_english_text() -> None:
    redactor = PIIRedactor()
    for text in arxiv_docs():
        assert redactor.redact(text, "math") == (text, {"email": 0, "ip": 0, "phone": 0})
    for text in english_docs():
        assert redactor.redact(text, "en")[1] == {"email": 0, "ip": 0, "phone": 0}


def test_pii_code_redacts_emails_and_ips_but_not_numbers() -> None:
    redactor = PIIRedactor()
    phones_found = 0
    for path in sorted(STDLIB.glob("*.py")):
        source = path.read_text(encoding="utf-8", errors="replace")
        _, counts = redactor.redact(source, "code")
        assert counts["phone"] == 0
        # Even with phone redaction on, stdlib code holds no phone-like numbers.
        phones_found += redactor.redact(source, "en")[1]["phone"]
    assert phones_found == 0
    snippet = 'AUTHOR = "Barry Warsaw <barry@python.org>"\nDNS = "8.8.8.8"\nFAX = "+44 20 7946 0958"\n'
    new, counts = redactor.redact(snippet, "code")
    assert new == 'AUTHOR = "Barry Warsaw <<EMAIL>>"\nDNS = "<IP_ADDRESS>"\nFAX = "+44 20 7946 0958"\n'
    assert counts == {"email": 1, "ip": 1, "phone": 0}
    everywhere = PIIRedactor(PIIConfig(no_phone_domains=()))
    assert everywhere.redact(snippet, "code")[1] == {"email": 1, "ip": 1, "phone": 1}


def test_pii_options() -> None:
    text = "Router 192.168.1.1, mail a.b@example.org, call 555-123-4567."
    assert PIIRedactor(PIIConfig(redact_non_global_ips=True)).redact(text, "en")[0] == (
        "Router <IP_ADDRESS>, mail <EMAIL>, call <PHONE_NUMBER>."
    )
    only_ips = PIIRedactor(PIIConfig(emails=False, phones=False))
    assert only_ips.redact(text + " 8.8.4.4", "en") == (
        text + " <IP_ADDRESS>",
        {"email": 0, "ip": 1, "phone": 0},
    )
    with pytest.raises(ValueError, match="emails"):
        PIIConfig(emails="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no_phone_domains"):
        PIIConfig(no_phone_domains="code")


# ---------------------------------------------------------------- decontamination


@pytest.fixture(scope="module")
def decontam() -> Decontaminator:
    return Decontaminator()


def gsm8k_item(i: int) -> dict[str, str]:
    lines = (DEFAULT_BENCHMARKS_DIR / "gsm8k-test.jsonl").read_text(encoding="utf-8").splitlines()
    return json.loads(lines[i])


def mmlu_row(subject: str, i: int) -> list[str]:
    with open(
        DEFAULT_BENCHMARKS_DIR / "mmlu" / "test" / f"{subject}_test.csv", newline="", encoding="utf-8"
    ) as fh:
        return list(csv.reader(fh))[i]


def test_default_index_holds_the_three_benchmarks_and_is_cached(decontam: Decontaminator) -> None:
    index = decontam.index
    assert index.benchmarks == {"gsm8k": 1319, "humaneval": 164, "mmlu": 14079}
    assert index.n == 13 and len(index) > 800_000
    assert load_benchmarks(None) is index  # built once per process
    assert Decontaminator().index is index
    assert decontam.version == index.version and len(index.version) == 16


def test_embedded_gsm8k_question_is_rejected_naming_the_item(decontam: Decontaminator) -> None:
    question = gsm8k_item(42)["question"]  # Grandma Jones baked 5 apple pies ...
    host = english_docs()[3]
    doc = make_doc(host[:1500] + "\n\nPuzzle of the day: " + question.upper() + "\n\n" + host[1500:], "en")
    result = decontam.process([doc])
    assert result.kept == []
    assert doc["reason"] == "contaminated"
    assert (
        doc["detail"]
        == 'benchmark=gsm8k item=test/42 ngram="grandma jones baked 5 apple pies for the fireman s luncheon she cut"'
    )


def test_gsm8k_answer_without_calculator_annotations_is_found(decontam: Decontaminator) -> None:
    answer = gsm8k_item(42)["answer"]  # "... 5*8=<<5*8=40>>40 pieces of pie ..."
    published = answer.replace("<<5*8=40>>", "").replace("<<40-14=26>>", "")
    hit = decontam.index.find("Solution: " + published)
    assert hit is not None and (hit.benchmark, hit.item_id) == ("gsm8k", "test/42")


def test_mmlu_questions_long_and_short(decontam: Decontaminator) -> None:
    long_q = mmlu_row("astronomy", 10)[0]  # Why does the plasma (ion) tail of a comet always point away ...
    hit = decontam.index.find(f"Quiz night! Q3: {long_q} Answer below.")
    assert hit is not None and (hit.benchmark, hit.item_id) == ("mmlu", "test/astronomy/10")
    # 11 tokens < 13: indexed whole; the CSV repeats it at row 116, the first row is named.
    short_q = mmlu_row("astronomy", 9)[0]
    assert short_q == "What is the source of the material that causes meteor showers?"
    doc = make_doc(f"Stargazing FAQ.\n{short_q}\nComets shed dust along their orbits.", "en")
    assert decontam.check(doc) == (
        "contaminated",
        'benchmark=mmlu item=test/astronomy/9 ngram="what is the source of the material that causes meteor showers"',
    )
    # Generic quiz wording is not specific enough to name an item.
    assert decontam.index.find("Which of the following statements is not true? Pick one.") is None


def humaneval(i: int) -> dict[str, str]:
    with gzip.open(DEFAULT_BENCHMARKS_DIR / "humaneval.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh][i]


def test_humaneval_prompt_in_code_domain(decontam: Decontaminator) -> None:
    problem = humaneval(0)
    source = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
    doc = make_doc(source + "\n\n" + problem["prompt"] + "    pass\n", "code", meta={"language": "python"})
    verdict = decontam.check(doc)
    assert verdict is not None and verdict[0] == "contaminated"
    assert verdict[1].startswith(
        'benchmark=humaneval item=HumanEval/0 ngram="from typing import list def has_close_elements'
    )


def test_idiomatic_code_shared_with_humaneval_is_not_contamination(decontam: Decontaminator) -> None:
    # HumanEval/40's solution loops are everyday Python; stdlib files hold the same 13-grams.
    solution = humaneval(40)["canonical_solution"]
    assert "for j in range(i + 1, len(l)):" in solution
    assert decontam.index.find("def triples(l):\n" + solution) is None
    # HumanEval/78's prompt lists hex digits: no content words, so not indexed.
    assert decontam.index.find('HEX = "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, A, B, C, D, E, F"') is None
    # The solution still completes n-grams that start in the prompt.
    prompt_end = " ".join(humaneval(40)["prompt"].split()[-8:])
    hit = decontam.index.find(prompt_end + "\n" + solution)
    assert hit is not None and hit.item_id == "HumanEval/40"


def test_real_documents_pass_unless_they_share_text_with_a_benchmark(decontam: Decontaminator) -> None:
    texts = english_docs() + arxiv_docs() + [d["text"] for d in jsonl("math/stackexchange-sample-b.jsonl")]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in sorted(STDLIB.glob("*.py"))]
    docs = [make_doc(t, "en") for t in texts]
    result = decontam.process(docs)
    assert len(result.kept) == len(texts) - 1
    # The one hit is real overlap, as 13-gram decontamination defines it: a RedPajama page
    # on obscenity law quotes the Miller test, which an MMLU professional_law question quotes too.
    [quoting] = result.rejected
    assert quoting["detail"] == (
        'benchmark=mmlu item=test/professional_law/1031 ngram="whether the work taken as a whole lacks '
        'serious literary artistic political or"'
    )


def test_custom_benchmark_files_and_directories(tmp_path: Path) -> None:
    gsm = gsm8k_item(7)
    items = [
        {"benchmark": "inhouse", "id": "q-1", "text": gsm["question"]},
        {"benchmark": "inhouse", "id": "q-2", "text": "Too short to index safely"},
    ]
    folder = tmp_path / "sets"
    folder.mkdir()
    (folder / "inhouse.jsonl").write_text("\n".join(json.dumps(x) for x in items) + "\n", encoding="utf-8")
    index = load_benchmarks([str(folder)])
    assert index.benchmarks == {"inhouse": 2}
    hit = index.find("Homework: " + gsm["question"])
    assert hit is not None and (hit.benchmark, hit.item_id) == ("inhouse", "q-1")
    assert index.find("This sentence is too short to index safely, really.") is None
    # The same content from a file path has the same version; changed content a new one.
    same = load_benchmarks([str(folder / "inhouse.jsonl")])
    assert same is not index and same.version == index.version
    (folder / "inhouse.jsonl").write_text(json.dumps(items[0]) + "\n", encoding="utf-8")
    assert BenchmarkIndex(read_benchmarks(folder)).version != index.version
    combined = load_benchmarks([str(folder), str(DEFAULT_BENCHMARKS_DIR / "humaneval.jsonl.gz")])
    assert combined.benchmarks == {"inhouse": 1, "humaneval": 164}
    only_custom = Decontaminator(DecontamConfig(benchmark_paths=(str(folder),)))
    assert only_custom.check(make_doc(gsm8k_item(42)["question"], "en")) is None


def test_decontam_config_and_input_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n must be"):
        DecontamConfig(n=0)
    with pytest.raises(ValueError, match="min_tokens"):
        DecontamConfig(n=13, min_tokens=14)
    with pytest.raises(ValueError, match="not a string"):
        DecontamConfig(benchmark_paths="gsm8k.jsonl")  # type: ignore[arg-type]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "no benchmark name"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'benchmark' name"):
        load_benchmarks([str(bad)])
    with pytest.raises(ValueError, match="unsupported"):
        list(read_benchmarks(SHARED / "README.md"))
    with pytest.raises(FileNotFoundError):
        list(read_benchmarks(tmp_path / "missing.jsonl"))


def test_steps_compose_in_a_pipeline(decontam: Decontaminator) -> None:
    question = gsm8k_item(42)["question"]
    docs = [
        make_doc(english_docs()[1] + "\nContact: ops@example.com", "en"),
        make_doc(cc_doc("ggvnfn4gidn2vbph52fvxig63q6kqhdt"), "en"),
        make_doc(english_docs()[2] + "\n" + question, "en"),
    ]
    pipeline = Pipeline([LanguageIdentifier(), PIIRedactor(), decontam])
    result = pipeline.run(docs)
    assert [d["doc_id"] for d in result.kept] == [docs[0]["doc_id"]]
    assert result.kept[0]["text"].endswith("Contact: <EMAIL>")
    assert [(d["stage"], d["reason"]) for d in result.rejected] == [
        ("langid", "language_mismatch"),
        ("decontam", "contaminated"),
    ]
    assert {name: (s.docs_in, s.kept, s.rejected) for name, s in pipeline.stats.items()} == {
        "langid": (3, 2, 1),
        "pii": (2, 2, 0),
        "decontam": (2, 1, 1),
    }
