"""Resources: where the tiers live and which language model runs (per environment, from env vars)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dagster import ConfigurableResource

from tier_assets.curation.models.embedder import Embedder, get_embedder
from tier_assets.curation.models.llm import LLM, LLMConfig, load_llm
from tier_assets.curation.storage import TierStore


class TierStoreResource(ConfigurableResource):
    """The data root: tiers, rejected sets, batch manifests, inbox, models and ``catalog.duckdb``."""

    data_root: str = "data"

    def store(self) -> TierStore:
        return TierStore(self.data_root)

    @property
    def root(self) -> Path:
        return self.store().root

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"


class LLMResource(ConfigurableResource):
    """The LLM that annotates (L2), rewrites (L3) and extracts and judges (L4); fields as ``LLMConfig``.

    The defaults are the embedded SmolLM2-135M-Instruct on CPU (CUDA + bf16 when a GPU
    is visible). ``model="/models/Qwen2.5-7B-Instruct"`` runs any local Hugging Face
    model; ``backend="openai", base_url="http://gpu-host:8000/v1", model="...",
    concurrency=16`` any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted);
    ``base_urls=[...]`` instead of ``base_url`` spreads requests over replicas of one model.
    A deployment sets them from ``$TIER_ASSETS_LLM`` (JSON with the same keys).
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

    @classmethod
    def from_config(cls, config: LLMConfig) -> LLMResource:
        return cls(**dataclasses.asdict(config))

    def config(self) -> LLMConfig:
        return LLMConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(LLMConfig)})

    def get(self) -> LLM:
        return load_llm(self.config())


class EmbedderResource(ConfigurableResource):
    """The sentence embedder of semantic dedup, L3 verification and L4 (None = the shipped MiniLM)."""

    model: str | None = None
    device: str | None = None

    def get(self) -> Embedder:
        return get_embedder(self.model, self.device)


def default_data_root() -> str:
    return os.environ.get("TIER_ASSETS_DATA_ROOT", str(Path("data").resolve()))


def default_llm_config() -> LLMConfig:
    """``$TIER_ASSETS_LLM``: the deployment's LLM config as JSON (empty = the embedded default)."""
    return LLMConfig.from_json(os.environ.get("TIER_ASSETS_LLM", ""))
