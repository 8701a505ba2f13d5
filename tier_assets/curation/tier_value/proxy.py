"""Proxy language models: build, train on a token stream, evaluate perplexity and multiple choice.

Two model sources share one training loop and one evaluation:

* tiny (CPU default): a Llama-architecture model from scratch with a byte-level BPE
  tokenizer trained on the run's arms (an equal share of characters from each, never
  on evaluation text), so every arm and seed is scored with the same tokenizer and the
  output layer stays small (1,024 x 96 of ~0.32M parameters at the defaults).
* decay (GPU): the shipped SmolLM2-135M (or any causal LM) with its own tokenizer,
  continued from its weights.

On CUDA the forward runs under bf16 autocast with fp32 master weights; on CPU in fp32.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from tier_assets.curation.tier_value.config import ProxyConfig
from tier_assets.curation.tier_value.evalsets import MCItem

EOS = "<|endoftext|>"


@dataclass
class Codec:
    """A tokenizer seen through what the proxy needs: encode, decode, end-of-text id, identity."""

    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]
    eos_id: int
    vocab_size: int
    fingerprint: str


def select_device(requested: str | None) -> str:
    """The requested device, else CUDA when visible, else CPU."""
    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` for the block (None: unchanged), then restored."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_bpe(arm_texts: Sequence[Sequence[str]], vocab_size: int, chars_per_arm: int = 400_000) -> Codec:
    """A byte-level BPE tokenizer trained on the first ``chars_per_arm`` characters of each arm."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator((t for texts in arm_texts for t in _first_chars(texts, chars_per_arm)), trainer)
    digest = hashlib.sha256(tok.to_str().encode()).hexdigest()[:16]
    return Codec(
        lambda s: tok.encode(s).ids,
        lambda ids: tok.decode(ids),
        tok.token_to_id(EOS),
        tok.get_vocab_size(),
        f"bpe-{tok.get_vocab_size()}-{digest}",
    )


def _first_chars(texts: Sequence[str], limit: int) -> list[str]:
    out, used = [], 0
    for text in texts:
        if used >= limit:
            break
        out.append(text[: limit - used])
        used += len(out[-1])
    return out


def hf_codec(tokenizer: Any, model_id: str) -> Codec:
    """A Hugging Face tokenizer (no special tokens added) as a ``Codec``."""
    return Codec(
        lambda s: tokenizer(s, add_special_tokens=False)["input_ids"],
        lambda ids: tokenizer.decode(ids),
        int(tokenizer.eos_token_id),
        len(tokenizer),
        f"{model_id}-{len(tokenizer)}",
    )


def tiny_model(cfg: ProxyConfig, vocab_size: int, seed: int) -> torch.nn.Module:
    """A freshly initialized small Llama (weights from ``seed``), tied input/output embeddings."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        max_position_embeddings=cfg.seq_len,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(config)


class BaseModel:
    """The decay base model, loaded once; ``fresh()`` returns an independent copy for each run."""

    def __init__(self, model: str | None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from tier_assets.curation.models.llm import resolve_model

        directory, gguf_file, self.model_id = resolve_model(model)
        kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
        self._model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **kwargs)
        self._state = {k: v.clone() for k, v in self._model.state_dict().items()}
        self.codec = hf_codec(self.tokenizer, self.model_id)

    def fresh(self) -> torch.nn.Module:
        self._model.load_state_dict(self._state)
        return self._model


def token_stream(codec: Codec, texts: Sequence[str]) -> torch.Tensor:
    """All texts as one id stream, each followed by end-of-text (packing, as pre-training does)."""
    ids: list[int] = []
    for text in texts:
        ids.extend(codec.encode(text))
        ids.append(codec.eos_id)
    return torch.tensor(ids, dtype=torch.long)


def blocks(stream: torch.Tensor, seq_len: int) -> torch.Tensor:
    """The stream cut into whole ``seq_len`` blocks (the tail shorter than a block is dropped)."""
    n = len(stream) // seq_len
    return stream[: n * seq_len].view(n, seq_len)


def _autocast(device: str) -> Any:
    return (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.startswith("cuda")
        else torch.autocast("cpu", enabled=False)
    )


def _schedule(steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to 10% of the peak learning rate."""
    warmup = max(1, round(steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train(
    model: torch.nn.Module,
    data: torch.Tensor,
    cfg: ProxyConfig,
    seed: int,
    device: str,
    max_steps: int | None = None,
) -> list[float]:
    """``cfg.epochs`` passes over ``data`` blocks, each ``seed``-shuffled; the loss of every step."""
    per_epoch = len(data) // cfg.batch_size
    steps = per_epoch * cfg.epochs if max_steps is None else max_steps
    if per_epoch < 1:
        raise ValueError(f"{len(data)} blocks make no batch of {cfg.batch_size}")
    model.to(device).train()
    generator = torch.Generator().manual_seed(seed)
    order = torch.cat(
        [
            torch.randperm(len(data), generator=generator)[: per_epoch * cfg.batch_size]
            for _ in range(math.ceil(steps / per_epoch))
        ]
    )
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.1, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _schedule(steps, cfg.warmup_fraction))
    losses = []
    for step in range(steps):
        idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        batch = data[idx].to(device)
        with _autocast(device):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return losses


def seconds_per_step(
    model: torch.nn.Module, data: torch.Tensor, cfg: ProxyConfig, device: str, steps: int = 3
) -> float:
    """Median wall time of a training step, after one warm-up step (for the run-time estimate)."""
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        train(model, data, cfg, seed=0, device=device, max_steps=1)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


@dataclass(frozen=True)
class Perplexity:
    perplexity: float
    bits_per_byte: float  # tokenizer-independent: comparable across runs whose tokenizers differ
    tokens: int


@torch.no_grad()
def perplexity(
    model: torch.nn.Module, codec: Codec, texts: Sequence[str], cfg: ProxyConfig, device: str, max_tokens: int
) -> Perplexity:
    """Token perplexity and bits per byte over ``seq_len`` windows of each text, up to ``max_tokens``."""
    windows: list[list[int]] = []
    total = 0
    for text in texts:
        if total >= max_tokens:
            break
        ids = codec.encode(text)
        for start in range(0, len(ids) - 1, cfg.seq_len):
            window = ids[start : start + cfg.seq_len]
            if len(window) > 1 and total < max_tokens:
                windows.append(window)
                total += len(window) - 1
    if not windows:
        raise ValueError("no evaluation text left to score")
    model.to(device).eval()
    nll, n_bytes = 0.0, 0
    for i in range(0, len(windows), cfg.batch_size):
        chunk = windows[i : i + cfg.batch_size]
        input_ids, mask = _pad(chunk, codec.eos_id)
        logprobs = _token_logprobs(model, input_ids.to(device), mask.to(device))
        nll -= float((logprobs * mask[:, 1:].to(device)).sum())
        n_bytes += sum(len(codec.decode(w[1:]).encode("utf-8")) for w in chunk)
    return Perplexity(math.exp(nll / total), nll / math.log(2) / n_bytes, total)


def _pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and a 0/1 mask of the real tokens."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def _token_logprobs(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p(token t | tokens < t) for t >= 1, shape (batch, len - 1)."""
    with _autocast(str(ids.device)):
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


@torch.no_grad()
def mc_accuracy(
    model: torch.nn.Module, codec: Codec, items: Sequence[MCItem], cfg: ProxyConfig, device: str
) -> float:
    """Log-likelihood multiple choice: the choice with the highest log-probability per byte wins."""
    if not items:
        raise ValueError("no multiple-choice items")
    model.to(device).eval()
    seqs, spans, sizes = [], [], []
    for item in items:
        prompt = codec.encode(f"Question: {item.question}\nAnswer:")
        for choice in item.choices:
            cont = codec.encode(f" {choice}")[: cfg.seq_len - 1]
            head = prompt[-(cfg.seq_len - len(cont)) :]
            seqs.append(head + cont)
            spans.append((len(head), len(head) + len(cont)))
            sizes.append(max(1, len(f" {choice}".encode())))
    scores = []
    for i in range(0, len(seqs), cfg.batch_size):
        chunk = seqs[i : i + cfg.batch_size]
        ids, mask = _pad(chunk, codec.eos_id)
        logprobs = _token_logprobs(model, ids.to(device), mask.to(device)).cpu()
        for row, (start, end) in enumerate(spans[i : i + cfg.batch_size]):
            scores.append(float(logprobs[row, start - 1 : end - 1].sum()))
    n = len(items[0].choices)
    correct = 0
    for k, item in enumerate(items):
        per_byte = [scores[k * n + c] / sizes[k * n + c] for c in range(n)]
        correct += max(range(n), key=per_byte.__getitem__) == item.answer
    return correct / len(items)
