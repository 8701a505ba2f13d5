"""Settings of a tier-value run: which arms, how many tokens, which proxy model, which limits."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tier_assets.curation.exports import StageSpec
from tier_assets.curation.schema import DOMAINS

BUILTIN_ARMS = ("L0", "L1", "L2", "L2+L3")
MODES = ("tiny", "decay")
SHORT_ARM_POLICIES = ("report", "refuse")


class ShortArm(ValueError):
    """An arm has fewer tokens than the budget and the run was told to refuse rather than report it."""


class BudgetTooLarge(ValueError):
    """The estimated run time exceeds the limit; the message names the estimate and a budget that fits."""


@dataclass(frozen=True)
class ProxyConfig:
    """The proxy model and its training; ``mode`` picks the tiny from-scratch Llama or SmolLM2 decay.

    tiny: a Llama-architecture model (a few layers, small hidden size) trained from
    scratch with a BPE tokenizer of ``vocab_size`` trained on the arms, so the output
    layer stays a small part of the model. decay: the shipped SmolLM2-135M (or
    ``base_model``) continues training on ``target_fraction`` arm tokens and the rest
    general tokens (the paper's decay verification); meant for a GPU.
    """

    mode: str = "tiny"
    vocab_size: int = 1024
    hidden_size: int = 96
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 256
    seq_len: int = 128
    batch_size: int = 8
    epochs: int = 2  # passes over each arm (the same for every arm)
    lr: float = 3e-3
    warmup_fraction: float = 0.1
    target_fraction: float = 0.3
    base_model: str | None = None
    device: str | None = None  # None: cuda when visible, else cpu
    # CPU intra-op threads: a second thread gains little on matrices this small, and on an
    # oversubscribed machine multi-threaded torch ran 15x slower than one thread (measured)
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"proxy mode must be one of {MODES}, got {self.mode!r}")
        for name in (
            "vocab_size",
            "hidden_size",
            "layers",
            "heads",
            "intermediate_size",
            "seq_len",
            "batch_size",
            "epochs",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"proxy {name} must be >= 1, got {getattr(self, name)}")
        if self.vocab_size < 260:
            raise ValueError(f"proxy vocab_size must be >= 260 (256 bytes + specials), got {self.vocab_size}")
        if self.hidden_size % self.heads:
            raise ValueError(f"proxy hidden_size {self.hidden_size} must be divisible by heads {self.heads}")
        if not self.lr > 0 or not 0 <= self.warmup_fraction < 1 or not 0 < self.target_fraction <= 1:
            raise ValueError("proxy lr must be > 0, warmup_fraction in [0, 1), target_fraction in (0, 1]")

    @classmethod
    def for_mode(cls, mode: str, **overrides: Any) -> ProxyConfig:
        """The settings of ``mode`` (decay: longer sequences, one pass, a continued-training rate)."""
        defaults = {"mode": mode}
        if mode == "decay":
            defaults |= {"seq_len": 512, "batch_size": 8, "epochs": 1, "lr": 1e-4}
        return cls(**(defaults | {k: v for k, v in overrides.items() if v is not None}))

    def fingerprint(self) -> str:
        """Hash of every setting but device and threads: equal fingerprints, the same proxy."""
        values = {k: v for k, v in asdict(self).items() if k not in ("device", "threads")}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TierValueConfig:
    """One run: arms of one domain at an equal token budget, trained once per seed, evaluated held out.

    ``token_budget`` is in the project's estimated tokens (``exports.estimate_tokens``);
    every arm is exported to it and then trained on the same number of proxy tokens.
    ``extra_specs`` are user-named export specs, trained as further arms.
    """

    domain: str = "en"
    token_budget: int = 40_000
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = BUILTIN_ARMS
    extra_specs: tuple[StageSpec, ...] = ()
    data_seed: int = 0
    eval_path: str | None = None  # None: the shipped held-out text (tier_value_data/)
    max_eval_tokens: int = 20_000
    mmlu_items: int = 200
    max_eval_overlap: float = 0.1
    short_arm: str = "report"
    time_limit_s: float = 900.0
    proxy: ProxyConfig = field(default_factory=ProxyConfig)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.token_budget < 1:
            raise ValueError(f"token_budget must be >= 1, got {self.token_budget}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {self.seeds}")
        unknown = set(self.arms) - set(BUILTIN_ARMS)
        if unknown:
            raise ValueError(f"unknown arms {sorted(unknown)}; built-in arms are {BUILTIN_ARMS}")
        if len(self.arms) + len(self.extra_specs) < 2:
            raise ValueError("a comparison needs at least two arms")
        if self.short_arm not in SHORT_ARM_POLICIES:
            raise ValueError(f"short_arm must be one of {SHORT_ARM_POLICIES}, got {self.short_arm!r}")
        if not 0 <= self.max_eval_overlap < 1:
            raise ValueError(f"max_eval_overlap must be in [0, 1), got {self.max_eval_overlap}")
        if self.max_eval_tokens < 1 or self.mmlu_items < 0 or not self.time_limit_s > 0:
            raise ValueError("max_eval_tokens must be >= 1, mmlu_items >= 0, time_limit_s > 0")
