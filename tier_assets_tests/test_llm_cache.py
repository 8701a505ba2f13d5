"""The LLM cache: a killed run resumes paying only for the calls it has not made, with identical output.

The LLM is the real embedded SmolLM2-135M (loaded once per module), wrapped in a counting
proxy that forwards every request to it and ends the run after N calls by raising from
inside the next call, as a crash there would. That the file survives a SIGKILL mid-stream
is tested with real writer processes (a model per subprocess is too slow for CI).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from tier_assets.curation.l2.annotate import Annotation, Annotator
from tier_assets.curation.l2.train import AnnotationCache
from tier_assets.curation.l3.budget import TokenBudget
from tier_assets.curation.l3.refine import refine_partition
from tier_assets.curation.l3.settings import L3Settings
from tier_assets.curation.l3.verify import judge_pairs
from tier_assets.curation.l4.build import build_l4_partition
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.llm_cache import LLMCache, call_key, sha256_json
from tier_assets.curation.models.llm import TransformersLLM

REPO = Path(__file__).resolve().parents[1]
WEB_SAMPLE = Path("web") / "redpajama-cc-2023-06-sample.jsonl"
KILL_AFTER_CALLS = 2


class StopRun(Exception):
    """Raised by the proxy to end a run part way, as a crash would."""


class CountingLLM(TransformersLLM):
    """The real model (same weights, tokenizer and lock), logging each call's requests before running it.

    It is a ``TransformersLLM`` so budgets count prompt tokens exactly as for the model itself.
    With ``stop_after`` calls the next call raises ``StopRun`` instead of running.
    """

    def __init__(self, inner: TransformersLLM, stop_after: int | None = None):
        self.__dict__.update(inner.__dict__)
        self.calls: list[list[str]] = []
        self.stop_after = stop_after

    def _record(self, op: str, prompts: Sequence) -> None:
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise StopRun(f"stopped after {len(self.calls)} calls")
        self.calls.append([f"{op}:{sha256_json(p)}" for p in prompts])

    def generate(self, prompts, max_new_tokens=256, temperature=0.0, no_repeat_ngram=0):
        self._record("generate", prompts)
        return super().generate(prompts, max_new_tokens, temperature, no_repeat_ngram)

    def next_token_logprobs(self, prompts, candidates):
        self._record("logprobs", prompts)
        return super().next_token_logprobs(prompts, candidates)

    def requests(self) -> Counter[str]:
        return Counter(r for call in self.calls for r in call)


def _web_docs(shared_data: Path, lines: Sequence[int]) -> list[dict]:
    rows = (shared_data / WEB_SAMPLE).read_text(encoding="utf-8").splitlines()
    return [{"doc_id": f"web-{i}", "parent_ids": [], "tier": "L2", "domain": "en", "batch": "b1",
             "text": json.loads(rows[i])["text"], "score": 4.0 - k, "signals": {}, "models": {}}
            for k, i in enumerate(lines)]


def l3_docs(shared_data: Path) -> list[dict]:
    return _web_docs(shared_data, (8, 0, 1))


L3_CONFIG = L3Settings(formats={"en": ["qa"]}, max_new_tokens=24, min_new_tokens=8, batch_size=1,
                     max_source_chars=400, budget_tokens=6000)
L4_CONFIG = L4Settings(budget_tokens=2400, max_new_tokens=32, min_new_tokens=8, max_source_chars=400, batch_size=1,
                     judge_reserve_tokens=400, max_llm_docs=3)


@pytest.fixture(scope="module")
def llm() -> TransformersLLM:
    from tier_assets.curation.models.llm import load_llm

    return load_llm()


@pytest.fixture(scope="module")
def embedder():
    from tier_assets.curation.models.embedder import get_embedder

    return get_embedder()


# ---------------------------------------------------------------------------------------------- the file


def _key(i: int):
    return call_key("l3:qa", f"doc-{i}", f"prompt {i}", {"model_id": "m"}, "v1", {"max_new_tokens": 8})


def test_torn_last_line_is_skipped_with_a_warning_and_the_next_append_starts_a_fresh_line(tmp_path, caplog):
    path = tmp_path / "cache.jsonl"
    LLMCache(path).put([(_key(0), {"text": "a"}), (_key(1), {"text": "b"})])
    with path.open("ab") as fh:  # a writer killed in the middle of a record
        fh.write(b'{"key": "' + _key(2).digest.encode() + b'", "answer": {"te')
    with caplog.at_level(logging.WARNING, logger="tier_assets.curation.llm_cache"):
        cache = LLMCache(path)
    assert cache.torn_lines == 1 and "line 3 skipped" in caplog.text
    assert cache.get(_key(0)) == {"text": "a"} and cache.get(_key(1)) == {"text": "b"}
    assert cache.get(_key(2)) is None  # asked again
    cache.put([(_key(2), {"text": "c"})])
    again = LLMCache(path)
    assert again.torn_lines == 1  # the torn line is still there, but it did not swallow the new record
    assert [again.get(_key(i)) for i in range(3)] == [{"text": "a"}, {"text": "b"}, {"text": "c"}]


def test_one_shared_cache_serves_several_data_roots(tmp_path, monkeypatch):
    from tier_assets.curation.llm_cache import cache_path

    staging, production = tmp_path / "staging", tmp_path / "production"
    assert cache_path(staging, "L3", "en", "b1") == staging / "cache" / "llm" / "l3" / "en" / "b1.jsonl"
    monkeypatch.setenv("TIER_ASSETS_LLM_CACHE", str(tmp_path / "shared"))
    path = cache_path(staging, "L3", "en", "b1")
    assert path == cache_path(production, "L3", "en", "b1") == tmp_path / "shared" / "l3" / "en" / "b1.jsonl"
    LLMCache(path).put([(_key(0), {"text": "paid once"})])
    again = LLMCache(cache_path(production, "L3", "en", "b1"))
    assert again.get(_key(0)) == {"text": "paid once"} and again.get(_key(1)) is None
    assert (again.hits, again.misses) == (1, 1)


def test_failed_calls_are_not_cached(tmp_path):
    from tier_assets.curation.llm_cache import cached

    cache = LLMCache(tmp_path / "cache.jsonl")

    def broken(idx: list[int]) -> list[dict]:
        raise RuntimeError("HTTP 503")

    with pytest.raises(RuntimeError, match="503"):
        cached(cache, [_key(0)], broken, dict, dict)
    assert not (tmp_path / "cache.jsonl").exists() and LLMCache(tmp_path / "cache.jsonl").answers == {}


WRITER = """
import sys
from pathlib import Path
from tier_assets.curation.llm_cache import LLMCache, call_key
name, n = sys.argv[1], int(sys.argv[2])
cache = LLMCache(Path(sys.argv[3]))
for i in range(n):
    key = call_key("t", f"{name}-{i}", i, {"model_id": "m"}, "v", {})
    cache.put([(key, {"text": name * 3000, "i": i}), (call_key("t", f"{name}-{i}b", i, {}, "v", {}), {"i": i})])
print("done", flush=True)
"""


def test_concurrent_writers_and_a_sigkilled_one_never_corrupt_each_other(tmp_path):
    """Two processes append records larger than a pipe buffer at once; a third is SIGKILLed mid-stream."""
    path = tmp_path / "cache.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name, "150", str(path)], env=env,
                                stdout=subprocess.PIPE) for name in ("a", "b")]
    victim = subprocess.Popen([sys.executable, "-c", WRITER, "k", "100000", str(path)], env=env)
    for w in writers:
        assert w.communicate(timeout=300)[0].strip() == b"done" and w.returncode == 0
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    cache = LLMCache(path)
    for name in ("a", "b"):
        for i in range(150):
            key = call_key("t", f"{name}-{i}", i, {"model_id": "m"}, "v", {})
            assert cache.get(key) == {"text": name * 3000, "i": i}
    assert cache.torn_lines <= 1  # at most the killed writer's last, half-written line


def test_annotation_cache_survives_a_torn_line_and_skips_failed_annotations(tmp_path, llm):
    annotator = Annotator(llm, domain="en")
    path = tmp_path / "annotations.jsonl"
    ok = Annotation(3.5, 3.2, "logprobs", None, {"judge_score": 3.2}, [], 0, llm.model_id, "transformers", "v", "r")
    failed = Annotation(None, None, None, "llm error: HTTP 503", {}, [], 0, llm.model_id, "transformers", "v", "r")
    AnnotationCache(path, annotator).add(["good text", "unlucky text"], [ok, failed], ["d1", "d2"])
    with path.open("ab") as fh:
        fh.write(b'{"key": "abc", "annot')
    cache = AnnotationCache(path, annotator)  # the pre-cache AnnotationCache raised JSONDecodeError here
    assert cache.get("good text", "d1") == ok
    assert cache.get("unlucky text", "d2") is None  # transient failure: asked again
    assert cache.get("good text", "another doc") is None
    other = Annotator(llm, domain="en", injection_penalty=2.0)  # a setting that changes labels
    assert AnnotationCache(path, other).get("good text", "d1") is None


# ---------------------------------------------------------------------------------------------- L3 and L4


@pytest.mark.slow
def test_cached_judgements_are_not_asked_again_and_charge_the_budget_alike(tmp_path, shared_data, llm):
    evidence = l3_docs(shared_data)[0]["text"][:600]
    pairs = [(evidence, "Myanmar is a country in Southeast Asia."), (evidence, "Myanmar is an island.")]
    runs = []
    for _ in range(2):
        counting, budget = CountingLLM(llm), TokenBudget(10_000)
        probs = judge_pairs(counting, pairs, budget, cache=LLMCache(tmp_path / "judge.jsonl"),
                            doc_ids=["web-8", "web-8"], task="l3:judge")
        runs.append((counting.calls, probs, budget.report()))
    (paid_calls, probs, spent), (cached_calls, probs2, spent2) = runs
    assert [len(c) for c in paid_calls] == [3] and cached_calls == []  # calibration prompt + two pairs, once
    assert probs2 == probs and all(p is not None and 0 < p < 1 for p in probs)
    assert spent2 == spent and spent["spent_tokens"] > 0


@pytest.mark.slow
def test_l3_interrupted_run_resumes_without_repeating_paid_calls_and_matches_an_uninterrupted_run(
        tmp_path, shared_data, llm, embedder):
    docs = l3_docs(shared_data)
    fresh = CountingLLM(llm)
    kept, rejected, stats = refine_partition(docs, fresh, embedder, L3_CONFIG, cache=LLMCache(tmp_path / "a.jsonl"))
    assert len(fresh.calls) > KILL_AFTER_CALLS and stats.llm_cache["hits"] == 0

    stopped = CountingLLM(llm, stop_after=KILL_AFTER_CALLS)
    with pytest.raises(StopRun):
        refine_partition(docs, stopped, embedder, L3_CONFIG, cache=LLMCache(tmp_path / "b.jsonl"))
    assert stopped.calls == fresh.calls[:KILL_AFTER_CALLS]

    resumed = CountingLLM(llm)
    kept2, rejected2, stats2 = refine_partition(docs, resumed, embedder, L3_CONFIG, cache=LLMCache(tmp_path / "b.jsonl"))
    assert not stopped.requests() & resumed.requests()  # no paid request was asked again
    assert stopped.requests() + resumed.requests() == fresh.requests()
    assert resumed.calls == fresh.calls[KILL_AFTER_CALLS:]
    assert stats2.llm_cache["hits"] == sum(stopped.requests().values())
    assert (kept2, rejected2) == (kept, rejected)
    assert (stats2.spent_tokens, stats2.spent_by_kind) == (stats.spent_tokens, stats.spent_by_kind)

    rerun = CountingLLM(llm)  # a complete cache: nothing is paid again
    assert refine_partition(docs, rerun, embedder, L3_CONFIG, cache=LLMCache(tmp_path / "b.jsonl"))[:2] == \
        (kept, rejected)
    assert rerun.calls == []


@pytest.mark.slow
@pytest.mark.heavy
def test_l4_interrupted_run_resumes_without_repeating_paid_calls_and_matches_an_uninterrupted_run(
        tmp_path, shared_data, llm, embedder):
    docs = l3_docs(shared_data)
    fresh = CountingLLM(llm)
    kept, rejected, stats = build_l4_partition(docs, fresh, embedder, L4_CONFIG, cache=LLMCache(tmp_path / "a.jsonl"))
    assert len(fresh.calls) > KILL_AFTER_CALLS and stats.llm_calls == 3

    stopped = CountingLLM(llm, stop_after=KILL_AFTER_CALLS)
    with pytest.raises(StopRun):
        build_l4_partition(docs, stopped, embedder, L4_CONFIG, cache=LLMCache(tmp_path / "b.jsonl"))
    assert stopped.calls == fresh.calls[:KILL_AFTER_CALLS]

    resumed = CountingLLM(llm)
    kept2, rejected2, stats2 = build_l4_partition(docs, resumed, embedder, L4_CONFIG,
                                                  cache=LLMCache(tmp_path / "b.jsonl"))
    assert not stopped.requests() & resumed.requests()
    assert stopped.requests() + resumed.requests() == fresh.requests()
    assert stats2.llm_cache["hits"] == sum(stopped.requests().values())
    assert (kept2, rejected2) == (kept, rejected)
    assert stats2.spent_by_kind == stats.spent_by_kind
