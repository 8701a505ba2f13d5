"""The HTML report and the training-stage exports, over small real data roots built with TierStore."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import zstandard

from tier_assets.curation.exports import (
    StageSpec,
    chat_messages,
    default_spec,
    estimate_tokens,
    export_stage,
)
from tier_assets.curation.report import write_report
from tier_assets.curation.storage import PartitionRef, TierStore

DOMAINS = ("en", "zh", "math", "code")
N_L1 = 300  # L1 documents per domain; the first N_L2 of them are selected into L2
N_L2 = 100
FILLER = "the quick brown fox jumps over the lazy dog while the tiers keep every record "


def _text(prefix: str, length: int) -> str:
    return (prefix + " " + FILLER * (length // len(FILLER) + 1))[:length]


def _rec(doc_id: str, tier: str, domain: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"doc_id": doc_id, "tier": tier, "domain": domain, "batch": "b1", "text": text, **extra}


def _len(i: int) -> int:
    """100-300 characters: small against the budgets, so a prefix cut loses little."""
    return 100 + (i * 37) % 200


def build_store(root: Path, n_l1: int = N_L1, n_l2: int = N_L2) -> TierStore:
    """Every tier filled per domain: L1 ids reused by L2 (L2 is the selected part of L1).

    L3 holds qa / dialogue / rewrite outputs, L4 holds Q&A items and one fact
    without a question (not usable for SFT).
    """
    store = TierStore(root)
    for d in DOMAINS:
        l0 = [_rec(f"{d}-l0-{i}", "L0", d, _text(f"{d} raw {i}", _len(i))) for i in range(n_l1 + 10)]
        store.write(PartitionRef("L0", d, "b1"), l0)
        store.write(
            PartitionRef("L0", d, "b1"),
            [_rec(f"{d}-l0-bad", "L0", d, "", stage="l0_read", reason="empty_text")],
            kind="rejected",
        )
        l1 = [
            _rec(
                f"{d}-l1-{i}",
                "L1",
                d,
                _text(f"{d} filtered {i}", _len(i)),
                parent_ids=[f"{d}-l0-{i}"],
                models={"l1": {"recipe": "recipe-A"}},
            )
            for i in range(n_l1)
        ]
        store.write(PartitionRef("L1", d, "b1"), l1)
        l1_rej = [
            _rec(
                f"{d}-l1-rej-{i}",
                "L1",
                d,
                _text("short", 90),
                stage="gopher_quality",
                reason="gopher_quality:word_count",
            )
            for i in range(3)
        ] + [
            _rec(
                f"{d}-l1-dup-{i}",
                "L1",
                d,
                _text("dup", 200),
                stage="dedup_minhash",
                reason="near_duplicate",
                signals={"dedup": {"dup_method": "minhash", "dup_twin": f"{d}-l1-{i % 2}"}},
            )
            for i in range(5)
        ]
        store.write(PartitionRef("L1", d, "b1"), l1_rej, kind="rejected")
        # L2 keeps the L1 doc id; scores rise with i, so the top 30% are the highest i
        l2 = [
            {
                **r,
                "tier": "L2",
                "score": 2.0 + 3.0 * i / n_l2,
                "models": {"l1": {"recipe": "recipe-A"}, "l2": {"classifier": f"clf-{d}-v1"}},
            }
            for i, r in enumerate(l1[:n_l2])
        ]
        store.write(PartitionRef("L2", d, "b1"), l2)
        l2_rej = [
            {**r, "tier": "L2", "score": 2.5 * i / 20, "stage": "l2_select", "reason": "below_threshold"}
            for i, r in enumerate(l1[n_l2 : n_l2 + 20])
        ]
        store.write(PartitionRef("L2", d, "b1"), l2_rej, kind="rejected")
        l3 = []
        for i in range(12):
            fmt = ("qa", "dialogue", "rewrite")[i % 3]
            if fmt == "qa":
                text = f"Question: What does {d} item {i} say?\nAnswer: {_text(f'It says {i}.', 200)}"
            elif fmt == "dialogue":
                text = (
                    f"Teacher: Let us look at {d} item {i}.\nStudent: What is it about?\n"
                    f"Teacher: {_text('It is about', 150)}\nStudent: Thanks!"
                )
            else:
                text = _text(f"Rewritten {d} {i}", 260)
            l3.append(
                _rec(
                    f"{d}-l3-{i}",
                    "L3",
                    d,
                    text,
                    parent_ids=[f"{d}-l1-{i}"],
                    signals={"l3": {"format": fmt}},
                    models={"l3": {"llm": "smollm2-135m", "prompt": f"{fmt}-v2"}},
                )
            )
        store.write(PartitionRef("L3", d, "b1"), l3)
        l4 = [
            _rec(
                f"{d}-l4-{i}",
                "L4",
                d,
                f"Q: what is {d} fact {i}? A: fact {i} holds.",
                parent_ids=[f"{d}-l3-{i}"],
                signals={
                    "l4": {
                        "kind": "qa",
                        "question": f"What is {d} fact {i}?",
                        "answer": f"Fact {i} holds.",
                        "evidence": [{"doc_id": f"{d}-l3-{i}", "start": 0, "end": 20}],
                    }
                },
                models={"l4": {"extractor": "smollm2-135m", "embedder": "all-MiniLM-L6-v2"}},
            )
            for i in range(6)
        ] + [
            _rec(
                f"{d}-l4-fact",
                "L4",
                d,
                f"{d} is a domain.",
                parent_ids=[f"{d}-l3-0"],
                signals={"l4": {"kind": "fact"}},
                models={"l4": {"extractor": "smollm2-135m"}},
            ),
            _rec(
                f"{d}-l4-def",
                "L4",
                d,
                {"code": "bisect(a, x): Return the index where to insert x in a sorted list a.",
                 "zh": "蜂群是指生活在一起的一群蜜蜂。"}.get(d, f"A {d} term is a word with a fixed meaning."),
                parent_ids=[f"{d}-l3-0"],
                signals={"l4": {"kind": "definition", "term": {"code": "bisect", "zh": "蜂群"}.get(d, f"{d} term"),
                                "methods": ["rule:docstring" if d == "code" else "rule:definition"]}},
                models={"l4": {"extractor": "rules"}},
            ),
        ]
        store.write(PartitionRef("L4", d, "b1"), l4)
    return store


@pytest.fixture
def store(tmp_path: Path) -> TierStore:
    return build_store(tmp_path / "data")


def read_shard(path: Path) -> list[dict[str, Any]]:
    if path.name.endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    with open(path, "rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f).read()
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def read_export(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [r for s in manifest["shards"] for r in read_shard(out / s["path"])]
    return manifest, rows


def store_text(store: TierStore, tier: str, domain: str, doc_id: str) -> str:
    table = store.read(PartitionRef(tier, domain, "b1"), columns=["doc_id", "text"]).to_pylist()
    return next(r["text"] for r in table if r["doc_id"] == doc_id)


def n_chars_by_id(store: TierStore) -> dict[tuple[str, str], tuple[str, int]]:
    out = {}
    for tier in ("L1", "L2", "L3", "L4"):
        for ref in store.partitions(tier):
            for r in store.read(ref, columns=["doc_id", "domain", "n_chars"]).to_pylist():
                out[(tier, r["doc_id"])] = (r["domain"], r["n_chars"])
    return out


# ---------------------------------------------------------------- report


def test_report_has_every_section_table_and_plot(store: TierStore, tmp_path: Path) -> None:
    path = write_report(store, tmp_path / "out" / "report.html")
    page = path.read_text()
    for sid in ("overview", "funnel", "scores", "rejections", "dedup", "summary"):
        assert f'<section id="{sid}">' in page
    assert str(store.root) in page
    assert all(f'<span class="badge on">{t}</span>' in page for t in ("L0", "L1", "L2", "L3", "L4"))
    # funnel + scores + dedup + one rejection chart per tier with rejections (L0, L1, L2)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 6
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    # overview: L0 holds 4 x (N_L1 + 10) documents, 4 rejected; tier summary: one row per partition
    assert '<tr><td>L0</td><td class="num">1,240</td>' in page
    assert re.search(r'<tr><td>L0</td>(<td class="num">[0-9,]+</td>){5}<td class="num">4</td></tr>', page)
    assert page.count("<td>b1</td>") == 5 * 4
    # scores: N_L2 selected and 20 unselected per domain
    assert (
        '<tr><td>en</td><td class="num">100</td><td class="num">20</td><td class="num">83.3%</td></tr>'
        in page
    )
    # dedup: per domain one twin with 3 duplicates (cluster of 4), one with 2 (cluster of 3)
    assert '<tr><td>code</td><td>minhash</td><td class="num">3</td><td class="num">1</td>' in page
    assert '<tr><td>code</td><td>minhash</td><td class="num">4</td><td class="num">1</td>' in page
    assert '<td>gopher_quality</td><td>gopher_quality:word_count</td><td class="num">3</td>' in page
    assert '<td>l2_select</td><td>below_threshold</td><td class="num">20</td>' in page
    assert page.count("nothing rejected") == 2  # L3 and L4 hold data but rejected nothing
    assert "no data yet" not in page


def test_report_renders_an_empty_store(tmp_path: Path) -> None:
    page = write_report(TierStore(tmp_path / "empty"), tmp_path / "report.html").read_text()
    assert "data:image/png" not in page
    assert page.count('<tr class="absent"><td>') == 5
    assert "no data yet: no tier holds records" in page and "no data yet: L2 holds no scored records" in page
    assert "no duplicates found yet" in page
    assert '<span class="badge on">' not in page
    assert page.rstrip().endswith("</html>")


# ---------------------------------------------------------------- exports


def test_budget_weights_and_token_accounting(store: TierStore, tmp_path: Path) -> None:
    budget = 12_000
    spec = StageSpec(
        "pre", {"L1": 0.4, "L2": 0.6}, budget, domain_weights={"en": 0.5, "code": 0.3, "zh": 0.2}
    )
    m = export_stage(store, spec, tmp_path / "pre")
    manifest, rows = read_export(tmp_path / "pre")
    assert manifest["delivered_tokens"] == m.delivered_tokens <= budget
    assert not m.short and m.shortfalls == []
    assert m.tiers["L1"]["requested_tokens"] == 4_800 and m.tiers["L2"]["requested_tokens"] == 7_200
    # the data suffices, so each cell is short by less than one of its documents
    sizes = n_chars_by_id(store)
    biggest = Counter()
    for (tier, _), (domain, n) in sizes.items():
        biggest[(tier, domain)] = max(biggest[(tier, domain)], estimate_tokens(n, domain))
    for c in m.cells:
        assert 0 <= c["requested_tokens"] - c["delivered_tokens"] < biggest[(c["tier"], c["domain"])]
    assert m.delivered_tokens > 0.95 * budget
    # weights: tier and domain shares of what was delivered
    assert abs(m.tiers["L1"]["delivered_tokens"] / m.delivered_tokens - 0.4) < 0.02
    assert abs(m.domains["en"]["delivered_tokens"] / m.delivered_tokens - 0.5) < 0.02
    assert abs(m.domains["zh"]["delivered_tokens"] / m.delivered_tokens - 0.2) < 0.02
    assert "math" not in m.domains and {r["domain"] for r in rows} == {"en", "code", "zh"}
    # the shards hold exactly what the manifest counts
    assert (
        sum(estimate_tokens(sizes[(r["tier"], r["doc_id"])][1], r["domain"]) for r in rows)
        == m.delivered_tokens
    )
    assert len(rows) == m.delivered_docs == sum(s["docs"] for s in manifest["shards"])
    assert set(rows[0]) == {"text", "doc_id", "tier", "domain"}
    assert rows[0]["text"] == store_text(store, rows[0]["tier"], rows[0]["domain"], rows[0]["doc_id"])
    # L2 is the selected part of L1: no document is exported from both, none repeated
    l1_ids = {r["doc_id"] for r in rows if r["tier"] == "L1"}
    assert l1_ids and not l1_ids & {f"{d}-l1-{i}" for d in DOMAINS for i in range(N_L2)}
    assert Counter(r["doc_id"] for r in rows).most_common(1)[0][1] == 1


def test_natural_domain_weights_follow_available_tokens(store: TierStore, tmp_path: Path) -> None:
    m = export_stage(store, StageSpec("nat", {"L2": 1.0}, 10_000), tmp_path / "nat")
    avail = {c["domain"]: c["available_tokens"] for c in m.cells}
    for d in DOMAINS:
        share = avail[d] / sum(avail.values())
        assert abs(m.domains[d]["requested_tokens"] / 10_000 - share) < 0.001
        assert 0 < m.domains[d]["delivered_tokens"] <= m.domains[d]["requested_tokens"]


def test_same_seed_gives_identical_shards_other_seed_differs(store: TierStore, tmp_path: Path) -> None:
    spec = StageSpec("pre", {"L1": 0.4, "L2": 0.6}, 15_000, seed=7, shard_max_docs=25)
    a = export_stage(store, spec, tmp_path / "a")
    b = export_stage(store, spec, tmp_path / "b")
    assert len(a.shards) > 1
    assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]
    for s in a.shards:
        assert (tmp_path / "a" / s.path).read_bytes() == (tmp_path / "b" / s.path).read_bytes()
    assert a.selection_sha256 == b.selection_sha256
    c = export_stage(store, dataclasses.replace(spec, seed=8), tmp_path / "c")
    assert c.selection_sha256 != a.selection_sha256
    assert [s.sha256 for s in c.shards] != [s.sha256 for s in a.shards]


def test_shard_rotation_hashes_and_stale_shards_removed(store: TierStore, tmp_path: Path) -> None:
    out = tmp_path / "pre"
    many = export_stage(store, StageSpec("pre", {"L2": 1.0}, 8_000, shard_max_docs=10), out)
    assert len(many.shards) == -(-many.delivered_docs // 10) > 1
    assert [s.docs for s in many.shards][:-1] == [10] * (len(many.shards) - 1)
    for s in many.shards:
        assert hashlib.sha256((out / s.path).read_bytes()).hexdigest() == s.sha256
        assert (out / s.path).stat().st_size == s.bytes
    one = export_stage(store, StageSpec("pre", {"L2": 1.0}, 8_000), out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "pre-00000.jsonl.zst"]
    assert one.shards[0].docs == many.delivered_docs


def test_repetition_cap_and_shortfall(store: TierStore, tmp_path: Path) -> None:
    spec = StageSpec("rep", {"L1": 0.5, "L2": 0.5}, 10_000_000, max_repetitions={"L2": 3})
    m = export_stage(store, spec, tmp_path / "rep")
    _, rows = read_export(tmp_path / "rep")
    counts = Counter((r["tier"], r["doc_id"]) for r in rows)
    assert max(n for (t, _), n in counts.items() if t == "L1") == 1
    assert {n for (t, _), n in counts.items() if t == "L2"} == {3}  # budget huge: every L2 doc exactly 3x
    for c in m.cells:
        assert c["exhausted"]
        assert c["delivered_tokens"] == c["available_tokens"] * (3 if c["tier"] == "L2" else 1)
        assert c["short_tokens"] == c["requested_tokens"] - c["delivered_tokens"] > 0
    assert m.short and m.requested_tokens == 10_000_000
    assert m.delivered_tokens == sum(c["delivered_tokens"] for c in m.cells) < 10_000_000
    assert len(m.shortfalls) == 8 and any(s.startswith("L2/math: requested") for s in m.shortfalls)
    assert m.tiers["L2"]["delivered_docs"] == 3 * N_L2 * 4
    assert m.tiers["L1"]["delivered_docs"] == (N_L1 - N_L2) * 4


def test_repetition_only_once_a_cell_runs_out(store: TierStore, tmp_path: Path) -> None:
    spec = StageSpec("rep", {"L2": 1.0}, None, domain_weights={"en": 1.0})
    en_tokens = export_stage(store, spec, tmp_path / "all").delivered_tokens
    capped = dataclasses.replace(spec, token_budget=en_tokens * 3 // 2, max_repetitions={"L2": 2})
    cell = export_stage(store, capped, tmp_path / "rep").cells[0]
    assert not cell["exhausted"]
    assert 0 < cell["repeated_docs"] < N_L2  # a partial second epoch
    assert cell["delivered_docs"] - cell["repeated_docs"] == N_L2  # after the whole first one


def test_fill_skips_a_document_that_does_not_fit_and_goes_on(tmp_path: Path) -> None:
    # one 500-token document among sixty 10-token ones: wherever the seed puts it, the cell can be filled
    # exactly; a prefix of the seeded order stops short at the large document when it comes late
    store = TierStore(tmp_path / "data")
    docs = [_rec("en-big", "L1", "en", _text("big", 2_000))]
    docs += [_rec(f"en-small-{i}", "L1", "en", _text(f"small {i}", 40)) for i in range(60)]
    store.write(PartitionRef("L1", "en", "b1"), docs)
    for seed in range(10):
        spec = StageSpec("fill", {"L1": 1.0}, 590, max_repetitions={"L1": 2}, seed=seed)
        m = export_stage(store, spec, tmp_path / f"fill-{seed}")
        _, rows = read_export(tmp_path / f"fill-{seed}")
        assert m.delivered_tokens == 590 and not m.short, seed
        assert m.cells[0]["short_tokens"] == 0 and m.cells[0]["repeated_docs"] == 0
        assert len({r["doc_id"] for r in rows}) == len(rows) == m.delivered_docs  # no repeat while docs are left
        again = export_stage(store, spec, tmp_path / f"again-{seed}")
        assert again.selection_sha256 == m.selection_sha256


def test_manifest_collects_model_and_recipe_versions(store: TierStore, tmp_path: Path) -> None:
    m = export_stage(store, default_spec("pretrain", 20_000), tmp_path / "p")
    assert m.versions == {
        "l1.recipe": ["recipe-A"],
        "l2.classifier": ["clf-code-v1", "clf-en-v1", "clf-math-v1", "clf-zh-v1"],
    }
    d = export_stage(store, default_spec("decay", 6_000), tmp_path / "d")
    assert d.versions["l3.llm"] == ["smollm2-135m"]
    assert d.versions["l3.prompt"] == ["dialogue-v2", "qa-v2", "rewrite-v2"]
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["versions"] == d.versions


def test_decay_takes_only_the_top_of_l2(store: TierStore, tmp_path: Path) -> None:
    m = export_stage(store, default_spec("decay", 1_000_000), tmp_path / "d")
    _, rows = read_export(tmp_path / "d")
    l2 = {r["doc_id"] for r in rows if r["tier"] == "L2"}
    # 30% of the N_L2 scored docs per domain = the highest scores (i = 70..99)
    assert l2 == {f"{d}-l1-{i}" for d in DOMAINS for i in range(70, N_L2)}
    assert {r["tier"] for r in rows} == {"L2", "L3"}
    assert m.short  # 1M tokens is far more than the demo store holds


def test_sft_is_chat_from_l3_qa_dialogue_and_l4_items(store: TierStore, tmp_path: Path) -> None:
    m = export_stage(store, default_spec("sft", 1_000_000), tmp_path / "sft")
    _, rows = read_export(tmp_path / "sft")
    assert set(rows[0]) == {"messages", "doc_id", "tier", "domain"}
    for r in rows:
        roles = [msg["role"] for msg in r["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant"
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
        assert all(msg["content"].strip() for msg in r["messages"])
    ids = {r["doc_id"] for r in rows}
    assert not any(
        i.startswith(f"{d}-l3-{k}") for d in DOMAINS for k in (2, 5, 8, 11) for i in ids
    )  # rewrites
    assert len([i for i in ids if "-l3-" in i]) == 8 * 4  # 4 qa + 4 dialogue per domain
    by_id = {r["doc_id"]: r for r in rows}
    assert by_id["math-l4-3"]["messages"] == [
        {"role": "user", "content": "What is math fact 3?"},
        {"role": "assistant", "content": "Fact 3 holds."},
    ]
    assert by_id["en-l3-0"]["messages"][0] == {"role": "user", "content": "What does en item 0 say?"}
    assert [msg["role"] for msg in by_id["zh-l3-1"]["messages"]] == ["user", "assistant", "user", "assistant"]
    # an L4 definition is a question about its term, answered by the verified sentence
    assert by_id["en-l4-def"]["messages"] == [
        {"role": "user", "content": "What is en term?"},
        {"role": "assistant", "content": "A en term is a word with a fixed meaning."},
    ]
    assert by_id["code-l4-def"]["messages"][0]["content"] == "What does `bisect` do in Python?"
    assert by_id["zh-l4-def"]["messages"][0]["content"] == "什么是蜂群？"
    # the L4 facts without a question were selected (budget covers all) but cannot be chat: skipped, reported
    assert m.skipped == {"unformattable": 4}
    assert any("skipped" in s for s in m.shortfalls)


def test_parquet_output_reads_back(store: TierStore, tmp_path: Path) -> None:
    base = default_spec("sft", 1_000_000)
    m = export_stage(store, dataclasses.replace(base, output_format="parquet"), tmp_path / "sft")
    assert all(s.path.endswith(".parquet") for s in m.shards)
    table = pq.read_table(tmp_path / "sft" / m.shards[0].path)
    assert table.num_rows == m.delivered_docs
    assert table.schema.field("messages").type.value_type.names == ["role", "content"]
    jsonl = export_stage(store, base, tmp_path / "sft-jsonl")
    assert sorted(map(json.dumps, table.to_pylist())) == sorted(
        map(json.dumps, read_export(tmp_path / "sft-jsonl")[1])
    )
    assert jsonl.selection_sha256 == m.selection_sha256
    again = export_stage(store, dataclasses.replace(base, output_format="parquet"), tmp_path / "sft-again")
    assert [s.sha256 for s in again.shards] == [s.sha256 for s in m.shards]


def test_rag_exports_every_l4_item_with_index_pointer(store: TierStore, tmp_path: Path) -> None:
    (store.root / "index" / "l4").mkdir(parents=True)
    (store.root / "index" / "l4" / "manifest.json").write_text(json.dumps({"kind": "flat", "count": 32}))
    m = export_stage(store, default_spec("rag"), tmp_path / "rag")
    _, rows = read_export(tmp_path / "rag")
    assert m.delivered_docs == len(rows) == 8 * 4 and not m.short
    assert m.index == {"path": str(store.root / "index" / "l4"), "exists": True, "kind": "flat", "count": 32}
    item = next(r for r in rows if r["doc_id"] == "en-l4-2")
    assert item["parent_ids"] == ["en-l3-2"]
    assert item["item"]["evidence"] == [{"doc_id": "en-l3-2", "start": 0, "end": 20}]


def test_empty_store_exports_nothing_and_says_so(tmp_path: Path) -> None:
    m = export_stage(TierStore(tmp_path / "empty"), default_spec("pretrain", 1_000), tmp_path / "out")
    assert m.delivered_docs == 0 and m.shards == [] and m.short
    assert m.shortfalls == [
        "L1: requested 400 tokens, but no L1 record matches the spec",
        "L2: requested 600 tokens, but no L2 record matches the spec",
    ]


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="unknown tiers"):
        StageSpec("x", {"L9": 1.0})
    with pytest.raises(ValueError, match="max_repetitions"):
        StageSpec("x", {"L1": 1.0}, 10, max_repetitions={"L1": 0})
    with pytest.raises(ValueError, match="output_format"):
        StageSpec("x", {"L1": 1.0}, 10, output_format="csv")
    with pytest.raises(ValueError, match="stage name"):
        StageSpec("../x", {"L1": 1.0}, 10)


def test_chat_messages_parsers() -> None:
    assert chat_messages("L3", "<question>2+2?</question>\n<answer>4</answer>", {"l3": {"format": "qa"}}) == [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    dialogue = "Prof. A: Why?\nNote: not a speaker\nProf. B: Because.\n\nProf. A: Sure?\nProf. B: Yes.\nProf. A: Bye."
    assert chat_messages("L3", dialogue, {"l3": {"format": "dialogue"}}) == [
        {"role": "user", "content": "Why?\nNote: not a speaker"},
        {"role": "assistant", "content": "Because."},
        {"role": "user", "content": "Sure?"},
        {"role": "assistant", "content": "Yes."},
    ]
    bold = "**Teacher:** Ready?\n**Student:** Yes.\n"
    assert chat_messages("L3", bold, {}) == [
        {"role": "user", "content": "Ready?"},
        {"role": "assistant", "content": "Yes."},
    ]
    given = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert chat_messages("L3", "ignored", {"l3": {"messages": given}}) == given
    assert chat_messages("L3", "Just prose, no turns.", {"l3": {"format": "rewrite"}}) is None
