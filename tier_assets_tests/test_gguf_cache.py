"""The embedded GGUF model is de-quantized once per machine and loaded from its converted copy after that.

The first load in a test session converts (whichever test loads the LLM first); these tests check the
copy's publishing and reuse on the process's loaded model, without paying a second de-quantization.
"""

from __future__ import annotations

import pytest
import torch

from tier_assets.curation.models.gguf_cache import (
    MODEL_CACHE_ENV,
    converted_dir,
    is_complete,
    load_gguf,
    save_checked,
)
from tier_assets.curation.models.llm import TransformersLLM, load_llm, resolve_model

pytestmark = pytest.mark.slow
PROMPTS = ["Is Paris the capital of France? Answer Yes or No.", "Rate this text from 0 to 5: the cat sat on the mat."]


@pytest.fixture(scope="module")
def llm() -> TransformersLLM:
    loaded = load_llm()
    assert isinstance(loaded, TransformersLLM)
    return loaded


def test_the_default_model_is_loaded_from_its_converted_copy(llm):
    directory, gguf_file, _ = resolve_model(None)
    assert is_complete(converted_dir(directory, gguf_file, torch.float32))


def test_a_published_copy_is_reused_and_answers_like_the_model_it_was_saved_from(llm, tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path))
    directory, gguf_file, _ = resolve_model(None)
    target = converted_dir(directory, gguf_file, torch.float32)
    assert target.parent == tmp_path and not is_complete(target)
    save_checked(llm.tokenizer, llm.model, target)  # what the first load does after de-quantizing
    assert is_complete(target)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp directories left behind"
    written = (target / "model.safetensors").stat().st_mtime_ns

    copy = TransformersLLM()  # reads the copy: no de-quantization, nothing rewritten
    assert (target / "model.safetensors").stat().st_mtime_ns == written
    assert copy.identity == llm.identity  # cached LLM calls keep their keys
    assert copy.next_token_logprobs(PROMPTS, ["Yes", "No", "3"]) == llm.next_token_logprobs(PROMPTS, ["Yes", "No", "3"])
    assert copy.generate(PROMPTS, 16, 0.0) == llm.generate(PROMPTS, 16, 0.0)
    tokenizer, model = load_gguf(directory, gguf_file, torch.float32)
    ids = tokenizer(PROMPTS[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, llm.model(ids).logits)


def test_a_copy_without_its_weights_is_not_trusted(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert not is_complete(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert is_complete(tmp_path)
