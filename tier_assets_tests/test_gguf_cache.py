"""The embedded GGUF model is de-quantized once per machine and loaded from its converted copy after that."""

from __future__ import annotations

import logging

import pytest
import torch

from tier_assets.curation.models.gguf_cache import MODEL_CACHE_ENV, converted_dir, is_complete
from tier_assets.curation.models.llm import TransformersLLM, resolve_model

pytestmark = pytest.mark.slow
PROMPTS = ["Is Paris the capital of France? Answer Yes or No.", "Rate this text from 0 to 5: the cat sat on the mat."]


def test_the_first_load_converts_later_loads_read_the_copy_and_answer_the_same(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path))
    directory, gguf_file, _ = resolve_model(None)
    target = converted_dir(directory, gguf_file, torch.float32)
    assert target.parent == tmp_path and not is_complete(target)

    with caplog.at_level(logging.INFO, logger="tier_assets.curation.models.gguf_cache"):
        first = TransformersLLM()
    assert is_complete(target) and "de-quantizing" in caplog.text
    written = (target / "model.safetensors").stat().st_mtime_ns
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp directories left behind"

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tier_assets.curation.models.gguf_cache"):
        second = TransformersLLM()
    assert "de-quantizing" not in caplog.text
    assert (target / "model.safetensors").stat().st_mtime_ns == written
    assert second.identity == first.identity  # cached LLM calls keep their keys
    assert second.next_token_logprobs(PROMPTS, ["Yes", "No", "3"]) == first.next_token_logprobs(PROMPTS, ["Yes", "No", "3"])
    assert second.generate(PROMPTS, 16, 0.0) == first.generate(PROMPTS, 16, 0.0)



def test_a_copy_without_its_weights_is_not_trusted(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert not is_complete(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert is_complete(tmp_path)
