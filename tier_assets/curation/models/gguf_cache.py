"""A GGUF model de-quantized once, kept as a transformers checkpoint, and loaded from there afterwards.

transformers de-quantizes a GGUF file in Python on every ``from_pretrained``: about a minute on one
core for SmolLM2-135M Q4_1, paid once for the tokenizer and once for the weights. Every Dagster run
is a new process that loads the LLM again, so a user paid that minute per run. The converted copy
(safetensors, the same float32 weights, the same tokenizer) loads in about a second.

The copy is keyed by the GGUF file's SHA-256, the dtype and the transformers version (a new release may
de-quantize differently), and lives under ``$TIER_ASSETS_MODEL_CACHE`` (default
``~/.cache/tier_assets/models``). It is published atomically, after checking that it gives the same
logits as the model it was saved from; a cache that cannot be written falls back to the GGUF file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from tier_assets.curation.atomic import atomic_path

MODEL_CACHE_ENV = "TIER_ASSETS_MODEL_CACHE"
_PROBE = "The capital of France is"
log = logging.getLogger(__name__)


def model_cache_dir() -> Path:
    return Path(os.environ.get(MODEL_CACHE_ENV) or Path.home() / ".cache" / "tier_assets" / "models")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_dir(directory: str, gguf_file: str, dtype: Any) -> Path:
    """Where the ``dtype`` copy of ``directory/gguf_file`` lives (whether or not it exists yet)."""
    import transformers

    source = Path(directory) / gguf_file
    name = f"{source.stem}-{file_sha256(source)[:16]}-{str(dtype).removeprefix('torch.')}"
    return model_cache_dir() / f"{name}-transformers-{transformers.__version__}"


def is_complete(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def load_gguf(directory: str, gguf_file: str, dtype: Any) -> tuple[Any, Any]:
    """(tokenizer, model) of a GGUF file, from its converted copy, converting it on first use."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = converted_dir(directory, gguf_file, dtype)
    if is_complete(target):
        return AutoTokenizer.from_pretrained(target), AutoModelForCausalLM.from_pretrained(target, dtype=dtype)
    log.info("de-quantizing %s once into %s (later loads read the copy)", gguf_file, target)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=dtype)
    try:
        save_checked(tokenizer, model, target)
    except (OSError, RuntimeError) as exc:  # a read-only or full cache, a copy that differs: not kept
        log.warning("could not keep the converted %s under %s: %s", gguf_file, target, exc)
    return tokenizer, model


def save_checked(tokenizer: Any, model: Any, target: Path) -> None:
    """Publish ``model`` and ``tokenizer`` at ``target`` once a reload of the saved files gives the same logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not all(p.dtype.is_floating_point for p in model.parameters()):
        raise RuntimeError("the GGUF weights were kept in quantized blocks: there is no plain copy to keep")
    with atomic_path(target) as tmp:
        tokenizer.save_pretrained(tmp)
        save_dequantized(model, tmp)
        reloaded_tok = AutoTokenizer.from_pretrained(tmp)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=model.dtype).to(model.device)
        ids = tokenizer(_PROBE, return_tensors="pt")["input_ids"]
        if reloaded_tok(_PROBE, return_tensors="pt")["input_ids"].tolist() != ids.tolist():
            raise RuntimeError(f"the converted tokenizer at {tmp} encodes differently from the GGUF one")
        with torch.no_grad():
            same = torch.equal(model(ids.to(model.device)).logits, reloaded(ids.to(model.device)).logits)
        if not same:
            raise RuntimeError(f"the converted model at {tmp} gives other logits than the GGUF one")


def save_dequantized(model: Any, path: Path) -> None:
    """``save_pretrained`` of a model transformers de-quantized from GGUF.

    transformers still marks such a model as GGUF-quantized and refuses to save it, though its weights
    are plain tensors; the mark is lifted for the save and put back.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:  # a plain model (e.g. one loaded from a copy)
        model.save_pretrained(path)
        return
    had_config = "quantization_config" in model.config.to_dict()
    model.hf_quantizer = None
    if had_config:
        del model.config.quantization_config
    try:
        model.save_pretrained(path)
    finally:
        model.hf_quantizer = quantizer
        if had_config:
            model.config.quantization_config = quantizer.quantization_config
