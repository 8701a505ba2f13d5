"""Resources: where the tiers live and which language model runs (per environment, from env vars)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dagster import ConfigurableResource

from tier_assets.curation.models.llm import LLM, load_llm
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
    """The LLM that annotates (L2), rewrites (L3) and extracts and judges (L4).

    ``config_json`` is ``load_llm``'s config: empty = the embedded SmolLM2-135M-Instruct
    on CPU (CUDA + bf16 when a GPU is visible); ``{"backend": "transformers", "model":
    "/models/Qwen2.5-7B-Instruct"}`` for any local Hugging Face model; ``{"backend":
    "openai", "base_url": "http://gpu-host:8000/v1", "model": "...", "api_key_env":
    "OPENAI_API_KEY", "concurrency": 16}`` for vLLM, SGLang, llama.cpp or a hosted API.
    """

    config_json: str = ""

    def get(self) -> LLM:
        try:
            config = json.loads(self.config_json) if self.config_json.strip() else None
        except json.JSONDecodeError as exc:
            raise ValueError(f"llm resource: config_json is not JSON ({exc}): {self.config_json!r}") from exc
        return load_llm(config)


def default_data_root() -> str:
    return os.environ.get("TIER_ASSETS_DATA_ROOT", str(Path("data").resolve()))


def default_llm_config() -> str:
    """``$TIER_ASSETS_LLM``: the deployment's LLM config as JSON (empty = embedded default)."""
    return os.environ.get("TIER_ASSETS_LLM", "")
