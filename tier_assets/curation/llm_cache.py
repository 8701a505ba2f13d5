"""A cache of answered LLM requests, so a killed or repeated run pays only for what is missing.

Hours of L3 generation or L4 extraction must survive a crash, a kill or a redeploy. Every
answered request is appended to a JSONL file under ``{data_root}/cache/llm/{tier}/{domain}/``
(L3 / L4: one file per batch, L2: one per domain), or under ``$TIER_ASSETS_LLM_CACHE`` when
several data roots share one cache. A record holds its key, the fields the
key hashes (task, document id, SHA-256 of the exact prompt, the model's identity, the prompt
version, the decoding settings) in the clear for inspection, and the raw answer with its
token counts. A re-run looks each request up first; a hit returns what the paid call
returned, so the token budget is charged the same tokens and the run's output is identical
to one that was never interrupted.

Kill-safe: the records of one LLM call go to the file in one ``write()`` on an ``O_APPEND``
descriptor, then ``fsync``; a torn line (a process killed mid-write) is skipped with a
warning on load, and the next write starts on a fresh line. Two runs appending at once never
interleave inside a write. A call that fails (``LLMError``, HTTP errors) raises before
anything is written, so it is asked again next time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from tier_assets.curation.models.llm import LLM, Generation, Prompt, prompt_guard_version

log = logging.getLogger(__name__)
T = TypeVar("T")


SHARED_CACHE_ENV = "TIER_ASSETS_LLM_CACHE"


def cache_root(data_root: str | Path) -> Path:
    """``$TIER_ASSETS_LLM_CACHE`` when set, else ``{data_root}/cache/llm``.

    One directory may serve several data roots (the same batch curated on two engines, a staging
    and a production root, the demo re-run on a fresh root): a key names the document, the exact
    prompt, the model and its settings, so an answer is reused only for the very same request.
    """
    shared = os.environ.get(SHARED_CACHE_ENV)
    return Path(shared).expanduser().resolve() if shared else Path(data_root) / "cache" / "llm"


def cache_path(root: str | Path, tier: str, domain: str, name: str) -> Path:
    """``{cache_root(root)}/{tier}/{domain}/{name}.jsonl``: where one scope's answers live."""
    return cache_root(root) / tier.lower() / domain / f"{name}.jsonl"


def sha256_json(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys; lone surrogates kept, not refused)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class CallKey:
    """Everything that changes one request's answer; ``digest`` is the cache key."""

    task: str  # e.g. "l3:qa", "l3:judge", "l4:extract", "l4:judge", "l2:annotate"
    doc_id: str | None
    prompt_sha256: str
    model: Mapping[str, Any]
    prompt_version: str
    settings: Mapping[str, Any]  # decoding settings (max_new_tokens, temperature, ...)

    @property
    def digest(self) -> str:
        return sha256_json(asdict(self))


def call_key(task: str, doc_id: str | None, prompt: Any, model: Mapping[str, Any], prompt_version: str,
             settings: Mapping[str, Any]) -> CallKey:
    """The key of one request; ``prompt`` (text or chat messages) is hashed, not stored."""
    return CallKey(task, doc_id, sha256_json(prompt), dict(model), prompt_version, dict(settings))


@dataclass
class LLMCache:
    """Answers of one scope, loaded from and appended to one JSONL file; counts hits and misses."""

    path: Path
    answers: dict[str, Any] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    torn_lines: int = 0

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        for number, line in enumerate(self.path.read_bytes().split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.answers[record["key"]] = record["answer"]
            except (ValueError, KeyError, TypeError) as exc:
                self.torn_lines += 1
                log.warning("LLM cache %s: line %d skipped (torn or not a cache record: %s); its request "
                            "will be asked again", self.path, number, exc)

    def get(self, key: CallKey) -> Any | None:
        """The stored answer of ``key`` or None; counts the hit or miss."""
        answer = self.answers.get(key.digest)
        if answer is None:
            self.misses += 1
        else:
            self.hits += 1
        return answer

    def put(self, entries: Sequence[tuple[CallKey, Any]]) -> None:
        """Append the answers of one call: one line per answer, all in one write, then fsync."""
        if not entries:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = [json.dumps({"key": key.digest, **asdict(key), "answer": answer, "at": stamp},
                            ensure_ascii=False, sort_keys=True) for key, answer in entries]
        payload = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if _ends_torn(fd):
                payload = b"\n" + payload  # never glue a record onto a killed writer's half line
            _write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        for key, answer in entries:
            self.answers[key.digest] = answer

    def summary(self) -> str:
        return f"{self.hits} served from the LLM cache, {self.misses} asked"

    def report(self) -> dict[str, Any]:
        return {"path": str(self.path), "hits": self.hits, "misses": self.misses, "torn_lines": self.torn_lines}


def _ends_torn(fd: int) -> bool:
    """True when the file's last byte is not a newline (a writer died mid-record)."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _write_all(fd: int, payload: bytes) -> None:
    """One write() in practice; loops only on a short write (a full disk, a signal)."""
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


def cached(cache: LLMCache | None, keys: Sequence[CallKey], ask: Callable[[list[int]], list[T]],
           to_json: Callable[[T], Any], from_json: Callable[[Any], T]) -> list[T]:
    """Answers for ``keys`` in order: stored ones from ``cache``, the rest from ``ask(missing indices)``.

    The missing requests go to ``ask`` together, as one call, and are stored after it
    returns; if it raises, nothing is stored.
    """
    if cache is None:
        return ask(list(range(len(keys))))
    found = [cache.get(key) for key in keys]
    out: list[T | None] = [None if f is None else from_json(f) for f in found]
    missing = [i for i, f in enumerate(found) if f is None]
    if missing:
        fresh = ask(missing)
        cache.put([(keys[i], to_json(value)) for i, value in zip(missing, fresh, strict=True)])
        for i, value in zip(missing, fresh, strict=True):
            out[i] = value
    return cast(list[T], out)


@dataclass(frozen=True)
class Request:
    """One prompt and what it is about: the document and the task (format, judge, extraction)."""

    doc_id: str | None
    task: str
    prompt: Prompt


def generate(llm: LLM, cache: LLMCache | None, requests: Sequence[Request], prompt_version: str,
             max_new_tokens: int, temperature: float = 0.0, no_repeat_ngram: int = 0) -> list[Generation]:
    """``llm.generate`` through the cache; a hit is the stored text with its token counts."""
    settings = {"op": "generate", "max_new_tokens": max_new_tokens, "temperature": temperature,
                "no_repeat_ngram": no_repeat_ngram, "prompt_guard": prompt_guard_version(llm)}
    keys = [call_key(r.task, r.doc_id, r.prompt, llm.identity, prompt_version, settings) for r in requests]

    def ask(idx: list[int]) -> list[Generation]:
        return llm.generate([requests[i].prompt for i in idx], max_new_tokens=max_new_tokens,
                            temperature=temperature, no_repeat_ngram=no_repeat_ngram)

    return cached(cache, keys, ask, asdict, lambda d: Generation(**d))


def next_token_logprobs(llm: LLM, cache: LLMCache | None, requests: Sequence[Request], candidates: Sequence[str],
                        prompt_version: str) -> list[dict[str, float]]:
    """``llm.next_token_logprobs`` through the cache (-inf is stored as JSON ``-Infinity``)."""
    settings = {"op": "next_token_logprobs", "candidates": list(candidates),
                "prompt_guard": prompt_guard_version(llm)}
    keys = [call_key(r.task, r.doc_id, r.prompt, llm.identity, prompt_version, settings) for r in requests]

    def ask(idx: list[int]) -> list[dict[str, float]]:
        return llm.next_token_logprobs([requests[i].prompt for i in idx], candidates)

    return cached(cache, keys, ask, dict, lambda d: {k: float(v) for k, v in d.items()})
