"""Arms: the training data of each proxy run, exported from the tiers at an equal token budget.

An arm is an export spec (``exports.StageSpec``) restricted to the run's domain:
L0, L1 and L2 alone, L2 + L3 as the decay stage maps them (top 30% of L2 and L3),
or any text spec a user names. Each arm is exported with ``exports.export_stage``,
so its manifest says what was delivered, what was short and which model versions
made the records. Benchmark items never reach training: every training document
is screened with L1's decontamination index and a hit is removed and counted.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import zstandard

from tier_assets.curation.exports import STAGES, Manifest, StageSpec, default_spec, export_stage, file_sha256
from tier_assets.curation.l1.decontam import BenchmarkIndex
from tier_assets.curation.storage import TierStore


@dataclass(frozen=True)
class ArmData:
    """An arm's exported training documents and what describes them."""

    name: str
    spec: StageSpec
    texts: list[str]
    doc_ids: list[str]
    manifest: Manifest
    benchmark_docs_removed: int
    benchmark_hits: list[str]  # "doc_id: benchmark detail" of each removed document

    @property
    def short(self) -> bool:
        return self.manifest.short


def builtin_spec(arm: str, domain: str, token_budget: int, seed: int) -> StageSpec:
    """The export spec of a built-in arm, restricted to ``domain``."""
    only = {domain: 1.0}
    if arm in ("L0", "L1", "L2"):
        return StageSpec(f"arm-{arm}", {arm: 1.0}, token_budget, domain_weights=only, seed=seed)
    if arm == "L2+L3":
        return replace(default_spec("decay", token_budget, seed), name="arm-L2_L3", domain_weights=only)
    raise ValueError(f"unknown arm {arm!r}")


def parse_spec(text: str) -> StageSpec:
    """A user-named arm: a stage name (``pretrain``, ``decay``) or a JSON file of ``StageSpec`` fields."""
    if text in STAGES:
        spec = default_spec(text)
    else:
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"arm spec {text!r} is neither a stage ({', '.join(STAGES)}) nor a JSON file")
        try:
            fields = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"arm spec {path}: not valid JSON ({exc})") from exc
        if not isinstance(fields, dict):
            raise ValueError(f"arm spec {path}: expected a JSON object of StageSpec fields")
        try:
            spec = StageSpec(**fields)
        except TypeError as exc:
            raise ValueError(f"arm spec {path}: {exc}") from exc
    if spec.record_format != "text":
        raise ValueError(
            f"arm spec {spec.name!r} writes {spec.record_format!r} records; a proxy trains on text"
        )
    return spec


def user_spec(spec: StageSpec, domain: str, token_budget: int, seed: int) -> StageSpec:
    """A user-named spec at the run's budget and seed, in the run's domain (refused if it names others)."""
    others = sorted(d for d, w in spec.domain_weights.items() if w > 0 and d != domain)
    if others:
        raise ValueError(f"arm spec {spec.name!r} names domains {others}; this run measures {domain!r} only")
    return replace(
        spec,
        name=f"arm-{spec.name}",
        token_budget=token_budget,
        seed=seed,
        domain_weights={domain: 1.0},
        output_format="jsonl.zst",
    )


def export_arm(
    store: TierStore, name: str, spec: StageSpec, out_root: Path, benchmarks: BenchmarkIndex
) -> ArmData:
    """Export ``spec`` under ``out_root``, read its texts back, remove documents holding a benchmark item."""
    manifest = export_stage(store, spec, out_root / spec.name)
    texts, doc_ids, hits = [], [], []
    for record in _read_shards(manifest):
        found = benchmarks.find(record["text"])
        if found is not None:
            hits.append(f"{record['doc_id']}: {found.detail()}")
            continue
        texts.append(record["text"])
        doc_ids.append(record["doc_id"])
    return ArmData(name, spec, texts, doc_ids, manifest, len(hits), hits)


def _read_shards(manifest: Manifest) -> list[dict[str, Any]]:
    records = []
    for shard in manifest.shards:
        with open(manifest.path.parent / shard.path, "rb") as fh:
            reader = zstandard.ZstdDecompressor().stream_reader(fh)
            for line in io.TextIOWrapper(reader, encoding="utf-8"):
                if line.strip():
                    records.append(json.loads(line))
    return records


def partition_fingerprints(store: TierStore, spec: StageSpec, domain: str) -> dict[str, str]:
    """sha256 (16 hex) of every partition file an arm draws from: the data version of its results."""
    out = {}
    for tier in spec.tiers:
        for ref in store.partitions(tier):
            if ref.domain == domain:
                out[str(ref)] = file_sha256(store.partition_path(ref))[:16]
    return out
