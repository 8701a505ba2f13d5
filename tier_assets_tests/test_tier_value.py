"""Tier value: proxy models trained per tier on a small real store (demo corpus, real L0 / L1 code).

L0 is the real L0 ingest of the bundled en demo files; L1 keeps what the real Gopher
quality filter and the real benchmark decontamination keep; L2 is the better-scored
half of L1 (a recorded classifier version); L3 two short rewrites, so the L2 + L3 arm
is short. Proxies are seconds-sized.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
from pathlib import Path

import pytest

from tier_assets.curation.l0 import ingest_partition
from tier_assets.curation.l1.decontam import Decontaminator, load_benchmarks
from tier_assets.curation.l1.filters.gopher_quality import GopherQualityConfig, GopherQualityFilter
from tier_assets.curation.schema import stable_id
from tier_assets.curation.sources import SourceEntry
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.curation.tier_value import (
    BudgetTooLarge,
    EvalSetLeak,
    ProxyConfig,
    ShortArm,
    TierValueConfig,
    load_results,
    verify_tiers,
)
from tier_assets.curation.tier_value.arms import builtin_spec, export_arm
from tier_assets.curation.tier_value.evalsets import load_mmlu, load_texts, screen_heldout, training_index
from tier_assets.curation.tier_value.run import _what_fits
from tier_assets.curation.tier_value.summary import compare, mean_ci
from tier_assets_tests.conftest import DEMO_DATA

CLASSIFIER = "clf-test-v1"
# a long item: decontamination indexes 13-grams, so a 7-word MMLU question is (by design) not indexed
MMLU_QUESTION = next(item.question for item in load_mmlu(50) if len(item.question.split()) >= 25)
TINY = ProxyConfig(
    vocab_size=300,
    hidden_size=32,
    layers=1,
    heads=2,
    intermediate_size=64,
    seq_len=32,
    batch_size=8,
    epochs=1,
    device="cpu",
)


def _config(**kw) -> TierValueConfig:
    base = dict(
        token_budget=1500,
        seeds=(0, 1),
        arms=("L1", "L2+L3"),
        max_eval_tokens=400,
        mmlu_items=8,
        time_limit_s=600.0,
        proxy=TINY,
    )
    return TierValueConfig(**(base | kw))


def _build_store(root: Path) -> TierStore:
    store = TierStore(root)
    l0_ref = PartitionRef("L0", "en", "b1")
    entries = [
        SourceEntry(p.stem, "en", "jsonl", str(p), relpath=p.name)
        for p in sorted((DEMO_DATA / "en").glob("*.jsonl*"))
        if not p.name.startswith("cc-main")
    ]
    ingest_partition(store, l0_ref, entries)
    l0 = store.read(l0_ref).to_pylist()
    # a raw document that quotes an MMLU question: L1 must reject it, and no arm may train on it
    l0.append(
        {**l0[0], "doc_id": "l0-quotes-mmlu", "text": l0[0]["text"] + "\n" + MMLU_QUESTION, "n_chars": None}
    )
    store.write(l0_ref, l0)
    gopher, decontam = GopherQualityFilter(GopherQualityConfig()), Decontaminator()
    l1 = [
        {
            **r,
            "doc_id": stable_id("L1", r["doc_id"]),
            "tier": "L1",
            "parent_ids": [r["doc_id"]],
            "models": json.dumps({"l1": {"recipe": "test"}}),
        }
        for r in l0
        if gopher.check(r) is None and decontam.check(r) is None
    ]
    store.write(PartitionRef("L1", "en", "b1"), l1)
    ranked = sorted(l1, key=lambda r: (-len(set(r["text"].split())), r["doc_id"]))
    l2 = [
        {
            **r,
            "tier": "L2",
            "score": 5.0 - i / len(ranked),
            "parent_ids": [r["doc_id"]],
            "models": json.dumps({"l2": {"classifier_version": CLASSIFIER}}),
        }
        for i, r in enumerate(ranked[: len(ranked) // 2])
    ]
    store.write(PartitionRef("L2", "en", "b1"), l2)
    l3 = [
        {
            **r,
            "doc_id": stable_id("L3", r["doc_id"]),
            "tier": "L3",
            "text": r["text"][:300],
            "n_chars": None,
            "parent_ids": [r["doc_id"]],
            "signals": json.dumps({"l3": {"format": "rewrite"}}),
        }
        for r in l2[:2]
    ]
    store.write(PartitionRef("L3", "en", "b1"), l3)
    pointer = root / "models" / "l2_classifier" / "en" / "current.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text(json.dumps({"version": CLASSIFIER}))
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TierStore:
    return _build_store(tmp_path_factory.mktemp("tier_value") / "data")


@pytest.fixture(scope="module")
def results(store: TierStore) -> dict:
    return verify_tiers(store, _config(), log=lambda _: None)


def test_metrics_are_finite_with_intervals_over_seeds(results: dict) -> None:
    assert [row["arm"] for row in results["summary"]] == ["L1", "L2+L3"]
    assert len(results["runs"]) == 4
    for row in results["summary"]:
        for metric in ("final_train_loss", "heldout_perplexity", "heldout_bits_per_byte", "mmlu_accuracy"):
            stat = row[metric]
            assert stat["n"] == 2 and math.isfinite(stat["mean"])
            assert stat["ci_low"] <= stat["mean"] <= stat["ci_high"]
        assert 1 < row["heldout_perplexity"]["mean"] < TINY.vocab_size * 2
        assert 0 <= row["mmlu_accuracy"]["mean"] <= 1
    assert results["mmlu"]["items"] == 8 and results["heldout"]["scored_texts"] > 0


def test_short_arm_is_used_whole_and_reported(results: dict) -> None:
    full, short = results["summary"]
    assert not full["short"] and short["short"]
    assert short["train_tokens"] < full["train_tokens"]
    assert short["train_tokens"] <= short["proxy_tokens_available"]
    assert short["tier_tokens"]["L3"] < 1500 / 2  # all of L3, nothing else mixed in to fill it
    assert any("arm L2+L3 is short" in line for line in results["conclusions"])


def test_versions_of_data_classifier_and_proxy_are_recorded(store: TierStore, results: dict) -> None:
    versions = results["versions"]
    assert versions["l2_classifier"] == CLASSIFIER
    assert versions["proxy_config"] == TINY.fingerprint() and versions["tokenizer"].startswith("bpe-300-")
    arm = versions["arms"]["L2+L3"]
    assert set(arm["partitions"]) == {"L2/en/b1", "L3/en/b1"}
    assert all(len(h) == 16 for h in arm["partitions"].values())
    assert arm["record_versions"]["l2.classifier_version"] == [CLASSIFIER]
    assert load_results(store)["versions"] == json.loads(
        json.dumps(versions)
    )  # written to {data_root}/tier_value/results.json
    assert (store.root / "tier_value" / "tier_value.png").read_bytes()[:4] == b"\x89PNG"


def test_benchmark_items_never_reach_training(store: TierStore, tmp_path: Path) -> None:
    l1_texts = store.read(PartitionRef("L1", "en", "b1")).column("text").to_pylist()
    assert not any(MMLU_QUESTION in t for t in l1_texts)  # L1's decontamination rejected it
    benchmarks = load_benchmarks(None)
    arms = {
        name: export_arm(store, name, builtin_spec(name, "en", 10**7, 0), tmp_path, benchmarks)
        for name in ("L0", "L1")
    }
    for arm in arms.values():
        assert not any(benchmarks.find(t) for t in arm.texts) and "l0-quotes-mmlu" not in arm.doc_ids
    assert arms["L1"].benchmark_docs_removed == 0  # L1 holds none: its decontamination already removed it
    l0_texts = store.read(PartitionRef("L0", "en", "b1")).column("text").to_pylist()
    # ours plus one real demo page quoting an MMLU professional_law item: raw L0 is not decontaminated
    assert arms["L0"].benchmark_docs_removed == sum(benchmarks.find(t) is not None for t in l0_texts) == 2
    assert any(hit.startswith("l0-quotes-mmlu:") for hit in arms["L0"].benchmark_hits)


def test_overlapping_eval_set_is_refused(store: TierStore, tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.jsonl"
    l1_texts = store.read(PartitionRef("L1", "en", "b1")).column("text").to_pylist()
    leaky.write_text("".join(json.dumps({"text": t}) + "\n" for t in l1_texts[:20]))
    with pytest.raises(EvalSetLeak, match="overlaps training data"):
        verify_tiers(store, _config(eval_path=str(leaky), arms=("L1", "L2")), log=lambda _: None)


def test_a_few_overlapping_eval_texts_are_removed_and_counted() -> None:
    heldout = load_texts(None)[:6]
    train = ["an unrelated training document about gardening and soil " * 5, heldout[2]]
    screened = screen_heldout(heldout, training_index([("L1", ["a", "b"], train)]), max_overlap=0.2)
    assert screened.removed_count == 1 and screened.total == 6 and heldout[2] not in screened.texts
    assert "arm:L1 doc b" in screened.removed[0]


def test_short_arm_refused_when_asked(store: TierStore) -> None:
    with pytest.raises(ShortArm, match="L2\\+L3 is short"):
        verify_tiers(store, _config(short_arm="refuse"), log=lambda _: None)


def test_budget_over_the_time_limit_is_refused_with_an_estimate(store: TierStore) -> None:
    with pytest.raises(
        BudgetTooLarge, match=r"estimated \d+s exceeds the time limit .* evaluation alone does not"
    ):
        verify_tiers(store, _config(time_limit_s=1e-6, arms=("L1", "L2")), log=lambda _: None)
    # 100s training + 20s evaluation, 65s limit: 45s of room for training -> 0.9 x 45% of the budget
    advice = _what_fits(_config(token_budget=10_000, time_limit_s=65.0), {"total_s": 120.0, "eval_s": 20.0})
    assert advice == "lower the token budget to about 4,050 or raise the limit"


def test_differences_inside_the_noise_are_said_in_words() -> None:
    a, b = mean_ci([10.0, 11.0, 12.0]), mean_ci([10.5, 11.5, 12.5])
    assert compare("L1", "L2", "heldout_perplexity", a, b)["verdict"] == "within_noise"
    assert "less than the noise" in compare("L1", "L2", "heldout_perplexity", a, b)["words"]
    c = mean_ci([5.0, 5.1, 5.2])
    real = compare("L1", "L2", "heldout_perplexity", a, c)
    assert real["verdict"] == "b_better" and "L2 is better than L1" in real["words"]
    assert compare("L1", "L2", "mmlu_accuracy", a, c)["verdict"] == "a_better"


def test_cli_bad_arguments_exit_nonzero_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tier_assets.cli_tier_value import add_tier_value_commands

    parser = argparse.ArgumentParser(prog="tier-assets")
    add_tier_value_commands(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["verify-tiers", "--token-budget", "0"])
    assert exc.value.code == 2 and "expected a whole number >= 1" in capsys.readouterr().err
    args = parser.parse_args(["verify-tiers", "--seeds", "1", "1", "--data-root", str(tmp_path)])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("verify-tiers: seeds must be distinct") and "\n" not in err
    args = parser.parse_args(["verify-tiers", "--spec", str(tmp_path / "missing.json")])
    assert args.func(args) == 2 and "neither a stage" in capsys.readouterr().err


def test_cli_refuses_a_leaking_eval_set(
    store: TierStore, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tier_assets.cli_tier_value import add_tier_value_commands

    leaky = tmp_path / "leaky.jsonl.gz"
    texts = store.read(PartitionRef("L1", "en", "b1")).column("text").to_pylist()[:10]
    with gzip.open(leaky, "wt") as fh:
        fh.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    parser = argparse.ArgumentParser(prog="tier-assets")
    add_tier_value_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "verify-tiers",
            "--data-root",
            str(store.root),
            "--eval",
            str(leaky),
            "--arms",
            "L1",
            "L2",
            "--token-budget",
            "2000",
        ]
    )
    assert args.func(args) == 1
    assert "refused: evaluation set overlaps training data" in capsys.readouterr().err


def test_report_gets_a_tier_value_section_only_with_results(
    store: TierStore, results: dict, tmp_path: Path
) -> None:
    from tier_assets.curation.report import write_report

    page = write_report(store, tmp_path / "report.html").read_text()
    assert 'id="tier-value"' in page and "L2+L3 (short)" in page and CLASSIFIER in page
    assert "data:image/png;base64," in page.split('id="tier-value"')[1]
    empty = TierStore(tmp_path / "empty")
    assert 'id="tier-value"' not in write_report(empty, tmp_path / "empty.html").read_text()


def test_tier_value_asset_materializes_through_dagster(store: TierStore, dagster_instance) -> None:
    from dagster import materialize

    from tier_assets.defs.resources import TierStoreResource
    from tier_assets.defs.tier_value import tier_value

    config = {
        "token_budget": 1500,
        "seeds": [0, 1],
        "arms": ["L1", "L2"],
        "mmlu_items": 4,
        "max_eval_tokens": 300,
        "proxy": {
            "vocab_size": 300,
            "hidden_size": 32,
            "layers": 1,
            "heads": 2,
            "intermediate_size": 64,
            "seq_len": 32,
            "batch_size": 8,
            "epochs": 1,
        },
    }
    result = materialize(
        [tier_value],
        instance=dagster_instance,
        resources={"tier_store": TierStoreResource(data_root=str(store.root))},
        run_config={"ops": {"tier_value": {"config": config}}},
    )
    assert result.success
    meta = result.asset_materializations_for_node("tier_value")[0].metadata
    assert "| L1 |" in meta["table"].value and "| L2 |" in meta["table"].value
    assert meta["plot"].value.startswith("![tier value](data:image/png;base64,")
    assert meta["versions"].value["l2_classifier"] == CLASSIFIER
    assert load_results(store)["config"]["arms"] == ["L1", "L2"]


@pytest.mark.slow
@pytest.mark.heavy
def test_decay_mode_continues_smollm2_on_a_target_general_mix(store: TierStore, tmp_path: Path) -> None:
    """The GPU path (the paper's decay verification) on CPU, a handful of steps: it runs, records the mix."""
    proxy = ProxyConfig.for_mode("decay", seq_len=64, batch_size=4, device="cpu")
    results = verify_tiers(
        store,
        _config(
            token_budget=600, seeds=(0,), arms=("L1", "L2"), mmlu_items=2, max_eval_tokens=64, proxy=proxy
        ),
        log=lambda _: None,
    )
    assert results["mode"] == "decay" and results["versions"]["tokenizer"].startswith("HuggingFaceTB/SmolLM2")
    assert "general" in results["versions"]  # the 70% general part is versioned like an arm
    for row in results["summary"]:
        assert (
            math.isfinite(row["heldout_perplexity"]["mean"]) and row["heldout_perplexity"]["ci_low"] is None
        )
        assert row["train_tokens"] % (4 * 64) == 0 and 0 < row["arm_train_tokens"] < row["train_tokens"]
    assert any("one seed" in line for line in results["conclusions"])


def test_an_arm_too_small_to_train_is_said_in_words() -> None:
    from tier_assets.curation.tier_value.summary import conclusions

    row = {
        "arm": "L2+L3",
        "short": True,
        "train_tokens": 0,
        "shortfalls": ["L3/en: requested 10 tokens"],
        "mmlu_accuracy": None,
    }
    assert conclusions([row], [], 0) == ["arm L2+L3 was not trained: it holds fewer tokens than one batch"]


def test_mmlu_accuracy_is_judged_against_what_guessing_gives() -> None:
    from tier_assets.curation.tier_value.summary import chance_band, conclusions

    low, high = chance_band(200)
    assert round(low, 3) == 0.19 and round(high, 3) == 0.31
    rows = [
        {"arm": a, "short": False, "train_tokens": 1, "mmlu_accuracy": {"mean": m}}
        for a, m in (("L1", 0.27), ("L2", 0.24))
    ]
    assert "within what guessing gives on 200 items" in conclusions(rows, [], 200)[0]
    rows[1]["mmlu_accuracy"]["mean"] = 0.36
    assert conclusions(rows, [], 200) == [
        "MMLU accuracy above what guessing gives on 200 items (up to 31.0%): L2 (36.0%)"
    ]


def test_mmlu_interval_holds_item_noise_and_short_arms_get_no_verdict() -> None:
    from tier_assets.curation.tier_value.summary import compare_neighbours, metric_stats

    runs = [
        {
            "final_train_loss": 5.0 + s / 10,
            "heldout_perplexity": 300.0 + s,
            "heldout_bits_per_byte": 3.5,
            "mmlu_accuracy": 0.32,
        }
        for s in range(3)
    ]
    stats = metric_stats(runs, 200)
    assert stats["heldout_perplexity"]["ci_low"] < 301 < stats["heldout_perplexity"]["ci_high"]
    mmlu = stats["mmlu_accuracy"]  # identical over seeds, yet 200 items leave about +-6.5 points
    assert mmlu["ci_high"] - mmlu["mean"] == pytest.approx(1.96 * math.sqrt(0.32 * 0.68 / 200))
    rows = [
        {"arm": a, "short": short, **stats} for a, short in (("L1", False), ("L2", False), ("L2+L3", True))
    ]
    verdicts = [(c["a"], c["b"], c["verdict"]) for c in compare_neighbours(rows)]
    assert verdicts == [
        ("L1", "L2", "within_noise"),
        ("L1", "L2", "within_noise"),
        ("L2", "L2+L3", "not_comparable"),
        ("L2", "L2+L3", "not_comparable"),
    ]
