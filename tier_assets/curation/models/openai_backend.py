"""The OpenAI-compatible backend: one server or a pool of replicas (vLLM, SGLang, llama.cpp, hosted APIs).

L3 generation and L4 extraction at scale are bound by the LLM, not by the run that
asks it. So the run stays one client, which keeps the token budget in one ledger,
and the work spreads over a pool of replicas serving the same weights: each
request goes to the replica with the fewest requests in flight (at most
``concurrency`` per replica); a replica that fails with 429 / 5xx / a timeout /
a refused connection cools down with exponential backoff and the request moves
to another one; other 4xx fail at once. Per-replica counts (served, failed, in
flight) are kept for progress lines and run metadata.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from tier_assets.curation.models.llm import (
    LLM,
    Generation,
    LLMError,
    LLMUnsupported,
    Prompt,
    as_messages,
    logsumexp,
    perplexity_from_logprobs,
)

T = TypeVar("T")

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def api_base(url: str) -> str:
    """``http://host:8000`` or ``.../v1`` -> ``.../v1``."""
    base = url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


@dataclass
class Replica:
    """One server of the pool and what it has done."""

    base_url: str
    in_flight: int = 0
    served: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    cool_until: float = 0.0
    last_error: str = ""

    def stats(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "served": self.served, "failed": self.failed,
                "in_flight": self.in_flight, "last_error": self.last_error}


class OpenAICompatibleLLM(LLM):
    """Any server speaking the OpenAI HTTP API, or a pool of replicas of one model.

    Requests run concurrently on a thread pool (``concurrency`` per replica); each
    retries, on another replica where there is one, with exponential backoff (plus
    jitter) on 429 / 5xx / timeouts / connection errors, and fails fast on other
    4xx. The API key is read from the environment variable named in the config,
    so no secret sits in a config file.
    """

    backend = "openai"

    def __init__(self, base_url: str | Sequence[str], model: str, api_key_env: str | None = "OPENAI_API_KEY",
                 concurrency: int = 8, timeout_s: float = 60.0, max_retries: int = 4,
                 backoff_s: float = 0.5, max_backoff_s: float = 20.0):
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("the openai backend needs at least one base URL")
        self.replicas = [Replica(api_base(u)) for u in urls]
        self.base_url = self.replicas[0].base_url if len(self.replicas) == 1 else \
            ",".join(r.base_url for r in self.replicas)
        self.model_id = model
        self.api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.concurrency = max(1, concurrency)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._slots = threading.Condition()

    # ------------------------------------------------------------------ routing

    def _acquire(self, avoid: Replica | None) -> Replica:
        """The replica for the next attempt (a circuit breaker per replica).

        The least-loaded healthy replica (its last request succeeded) with a free
        slot, other than ``avoid`` where possible. A failing replica gets one probe
        request at a time once its backoff has passed; while a healthy replica
        exists, other requests wait for its slots rather than go to a failing one.
        When every replica is failing, the one whose backoff ends first is taken.
        """
        with self._slots:
            while True:
                now = time.monotonic()
                healthy = [r for r in self.replicas if r.consecutive_failures == 0]
                free = [r for r in healthy if r.in_flight < self.concurrency]
                if free:
                    chosen = min([r for r in free if r is not avoid] or free, key=lambda r: (r.in_flight, r.served))
                else:
                    probes = [r for r in self.replicas if r.consecutive_failures and r.cool_until <= now
                              and r.in_flight == 0 and r is not avoid]
                    if probes:
                        chosen = min(probes, key=lambda r: r.cool_until)
                    elif not healthy:
                        idle = [r for r in self.replicas if r.in_flight < self.concurrency]
                        chosen = min(idle, key=lambda r: r.cool_until) if idle else None
                    else:
                        chosen = None
                if chosen is not None:
                    chosen.in_flight += 1
                    return chosen
                cooling = [r.cool_until - now for r in self.replicas if r.cool_until > now]
                self._slots.wait(min(cooling) if cooling else None)

    def _release(self, replica: Replica, error: str | None) -> None:
        with self._slots:
            replica.in_flight -= 1
            if error is None:
                replica.served += 1
                replica.consecutive_failures = 0
                replica.cool_until = 0.0
            else:
                replica.failed += 1
                replica.consecutive_failures += 1
                replica.last_error = error
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (replica.consecutive_failures - 1))
                replica.cool_until = time.monotonic() + delay
            self._slots.notify_all()

    def _wait_for_cooldown(self, replica: Replica) -> None:
        """Sleep out the chosen replica's backoff (with jitter) when every replica is cooling down."""
        remaining = replica.cool_until - time.monotonic()
        if remaining > 0:
            time.sleep(remaining * (0.5 + random.random() / 2))

    def request(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON request with retries across replicas; raises ``LLMError`` naming the URLs and last failures."""
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        failures: list[str] = []
        replica: Replica | None = None
        for _attempt in range(self.max_retries + 1):
            replica = self._acquire(avoid=replica)
            self._wait_for_cooldown(replica)
            url = f"{replica.base_url}{path}"
            req = urllib.request.Request(url, data=data, headers=headers, method="GET" if data is None else "POST")
            error: str | None = None
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    answer = json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                body = err.read().decode("utf-8", "replace")[:500]
                error = f"HTTP {err.code}: {body}"
                if err.code not in RETRY_STATUS:
                    self._release(replica, None)  # the replica is healthy; the request is wrong
                    kind = LLMUnsupported if err.code in (400, 404, 501) else LLMError
                    raise kind(f"{url} failed: {error}") from err
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
                error = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
            self._release(replica, error)
            if error is None:
                return answer
            failures.append(f"{url}: {error}")
        raise LLMError(f"{path} failed after {self.max_retries + 1} attempts: " + "; ".join(failures[-3:]))

    def pool_stats(self) -> list[dict[str, Any]]:
        """Per replica: requests served and failed, requests in flight, the last error."""
        with self._slots:
            return [r.stats() for r in self.replicas]

    @property
    def identity(self) -> dict[str, Any]:
        """The served model and where: one server's URL; for a pool, the model name only.

        Two servers may serve different builds under one name, so a single server's
        answers are keyed by its URL. The replicas of a pool must serve the same
        weights (that is what makes them replicas), so adding or removing one keeps
        the LLM cache.
        """
        if len(self.replicas) == 1:
            return {**self.info, "base_url": self.base_url}
        return {**self.info, "base_url": "pool"}

    def _map(self, fn: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
        workers = self.concurrency * len(self.replicas)
        if len(items) <= 1 or workers == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(min(workers, len(items))) as pool:
            return list(pool.map(fn, items))

    # ------------------------------------------------------------------ the LLM interface

    def models(self) -> list[str]:
        return [m["id"] for m in self.request("/models").get("data", [])]

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int = 256,
                 temperature: float = 0.0, no_repeat_ngram: int = 0) -> list[Generation]:
        def one(prompt: Prompt) -> Generation:
            resp = self.request("/chat/completions", {
                "model": self.model_id, "messages": as_messages(prompt),
                "max_tokens": max_new_tokens, "temperature": temperature})
            choice = resp["choices"][0]
            usage = resp.get("usage") or {}
            return Generation(choice["message"].get("content") or "", int(usage.get("prompt_tokens", 0)),
                              int(usage.get("completion_tokens", 0)), choice.get("finish_reason") or "stop")

        return self._map(one, prompts)

    def next_token_logprobs(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[dict[str, float]]:
        """From the first generated token's ``top_logprobs`` (20, the API's maximum)."""

        def one(prompt: Prompt) -> dict[str, float]:
            resp = self.request("/chat/completions", {
                "model": self.model_id, "messages": as_messages(prompt), "max_tokens": 1,
                "temperature": 0.0, "logprobs": True, "top_logprobs": 20})
            content = ((resp["choices"][0].get("logprobs") or {}).get("content")) or []
            if not content:
                raise LLMUnsupported(f"{self.base_url} returned no logprobs for model {self.model_id}")
            top = content[0].get("top_logprobs") or []
            return {c: logsumexp([t["logprob"] for t in top if t["token"].strip() == c]) for c in candidates}

        return self._map(one, prompts)

    def perplexity(self, texts: Sequence[str], max_tokens: int = 256) -> list[float]:
        """From ``/v1/completions`` with ``echo`` + ``logprobs`` (vLLM, llama.cpp, legacy OpenAI).

        The client has no tokenizer, so it sends the first ``8 * max_tokens``
        characters and keeps the log-probs of the first ``max_tokens`` prompt
        tokens (those whose text offset lies inside the prompt). Endpoints without
        echo raise ``LLMUnsupported``; callers then take perplexity from a local
        reference model (``TransformersLLM``), as CCNet / DCLM do anyway.
        """

        def one(text: str) -> float:
            prompt = text[: 8 * max_tokens]
            resp = self.request("/completions", {
                "model": self.model_id, "prompt": prompt, "max_tokens": 1, "temperature": 0.0,
                "echo": True, "logprobs": 1})
            lp = resp["choices"][0].get("logprobs") or {}
            offsets, values = lp.get("text_offset"), lp.get("token_logprobs")
            if not values:
                raise LLMUnsupported(f"{self.base_url} returned no echoed prompt logprobs")
            if offsets:
                values = [v for v, off in zip(values, offsets, strict=False) if off < len(prompt)]
            return perplexity_from_logprobs(values[:max_tokens])

        return self._map(one, texts)
