"""A pool of OpenAI-compatible replicas: real servers on 127.0.0.1 serving the embedded model.

Requests spread over the replicas, a dead replica's requests move to a live one, and
the answers equal the local model's, so L2 annotation, L3 generation and L4 judging
can run against N vLLM / SGLang replicas with the run as the one client that keeps
the budget.
"""

from __future__ import annotations

import dataclasses
import socket

import pytest

from tier_assets.curation.llm_server import run_server_in_thread
from tier_assets.curation.models.llm import LLMConfig, LLMError, load_llm
from tier_assets.curation.models.openai_backend import OpenAICompatibleLLM
from tier_assets.defs.resources import LLMResource

PROMPTS = [f"Is {thing} a fruit? Answer Yes or No." for thing in
           ("an apple", "a stone", "a banana", "a chair", "a cherry", "a river")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def replicas(llm):
    servers = [run_server_in_thread(llm), run_server_in_thread(llm)]
    yield servers
    for server in servers:
        server.close()


def assert_same_judgements(pool_answers, local_answers):
    for served, local in zip(pool_answers, local_answers, strict=True):
        for cand in ("Yes", "No"):
            assert served[cand] == pytest.approx(local[cand], abs=2e-3)


def test_requests_spread_over_the_replicas_and_answer_like_the_local_model(llm, replicas):
    pool = OpenAICompatibleLLM([s.base_url for s in replicas], llm.model_id, api_key_env=None, concurrency=1)
    answers = pool.next_token_logprobs(PROMPTS, ["Yes", "No"])
    assert_same_judgements(answers, llm.next_token_logprobs(PROMPTS, ["Yes", "No"]))
    served = [r["served"] for r in pool.pool_stats()]
    assert sum(served) == len(PROMPTS) and min(served) >= 1  # both replicas worked
    assert all(r["failed"] == 0 and r["in_flight"] == 0 for r in pool.pool_stats())


def test_a_dead_replica_cools_down_and_its_requests_move_to_a_live_one(llm, replicas):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens here
    pool = OpenAICompatibleLLM([dead, replicas[0].base_url], llm.model_id, api_key_env=None, concurrency=2,
                               max_retries=2, backoff_s=0.05, timeout_s=300)
    answers = pool.next_token_logprobs(PROMPTS, ["Yes", "No"])
    assert_same_judgements(answers, llm.next_token_logprobs(PROMPTS, ["Yes", "No"]))
    stats = {r["base_url"]: r for r in pool.pool_stats()}
    assert stats[dead]["served"] == 0 and stats[dead]["failed"] >= 1
    assert "Connection refused" in stats[dead]["last_error"] or "URLError" in stats[dead]["last_error"]
    assert stats[replicas[0].base_url]["served"] == len(PROMPTS)


def test_a_pool_with_every_replica_down_fails_naming_the_replicas():
    dead = [f"http://127.0.0.1:{free_port()}/v1", f"http://127.0.0.1:{free_port()}/v1"]
    pool = OpenAICompatibleLLM(dead, "m", api_key_env=None, max_retries=2, backoff_s=0.01, timeout_s=2)
    with pytest.raises(LLMError, match="after 3 attempts") as err:
        pool.generate(["hi"], max_new_tokens=2)
    assert all(url in str(err.value) for url in dead)


def test_the_pool_is_configured_like_one_server_and_keeps_the_cache_key_when_replicas_change(llm, replicas):
    urls = [s.base_url for s in replicas]
    config = LLMConfig.from_json(f'{{"backend": "openai", "model": "{llm.model_id}", "base_urls": {urls!r}}}'
                                 .replace("'", '"'))
    pool = load_llm(config)
    assert isinstance(pool, OpenAICompatibleLLM) and [r.base_url for r in pool.replicas] == urls
    smaller = load_llm(dataclasses.replace(config, base_urls=urls[:1] + urls[:1]))
    assert pool.identity == smaller.identity and "pool" in pool.identity["base_url"]
    single = load_llm({"backend": "openai", "model": llm.model_id, "base_url": urls[0]})
    assert single.identity["base_url"] == urls[0]  # one server: keyed by where it is served
    assert LLMResource.from_config(config).config() == config


@pytest.mark.parametrize("values, message", [
    ({"backend": "openai", "model": "m", "base_url": "http://a/v1", "base_urls": ["http://b/v1"]}, "not both"),
    ({"backend": "openai", "model": "m", "base_urls": []}, "needs model and base_url"),
    ({"backend": "openai", "model": "m", "base_urls": "http://a/v1"}, "non-empty list"),
    ({"backend": "openai", "model": "m", "base_urls": ["http://a/v1", ""]}, "non-empty list"),
])
def test_bad_pool_configs_are_refused_before_any_request(values, message):
    with pytest.raises(ValueError, match=message):
        LLMConfig.from_mapping(values)


def test_the_dagster_resource_declares_exactly_the_config_fields():
    """Dagster needs declared fields for the launchpad; they must stay those of ``LLMConfig``."""
    config_fields = {f.name: f.default for f in dataclasses.fields(LLMConfig)}
    resource_fields = {name: field.default for name, field in LLMResource.model_fields.items()}
    assert resource_fields == config_fields
