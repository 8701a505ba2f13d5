"""L3 for one stored partition: read L2, refine under the budget, write L3 kept and rejected.

LLM answers are cached under ``{data_root}/cache/llm/l3/{domain}/{batch}.jsonl``, so a run
killed part way (or repeated) pays only for the requests it has not made before.
"""

from __future__ import annotations

from collections.abc import Callable

from tier_assets.curation.l3.refine import L3Stats, refine_partition
from tier_assets.curation.l3.settings import L3Settings
from tier_assets.curation.llm_cache import LLMCache, cache_path
from tier_assets.curation.models.embedder import Embedder
from tier_assets.curation.models.llm import LLM
from tier_assets.curation.storage import PartitionRef, TierStore


def refine_stored_partition(store: TierStore, domain: str, batch: str, llm: LLM, embedder: Embedder,
                            config: L3Settings, progress: Callable[[str], None] | None = None,
                            cache: LLMCache | None = None) -> L3Stats:
    """Refine the L2 partition (domain, batch) into L3; an empty L2 partition gives an empty, valid L3 one.

    ``cache`` defaults to the partition's LLM cache under the data root.
    """
    docs = store.read_docs(PartitionRef("L2", domain, batch))
    cache = cache if cache is not None else LLMCache(cache_path(store.root, "L3", domain, batch))
    if progress:
        progress(f"L3 {domain}/{batch}: {len(docs)} L2 documents, budget {config.budget_tokens} tokens, "
                 f"LLM {llm.model_id} ({llm.backend}); {len(cache.answers)} LLM answers cached in {cache.path}")
    kept, rejected, stats = refine_partition(docs, llm, embedder, config, progress, cache)
    ref = PartitionRef("L3", domain, batch)
    store.write_partition(ref, kept, rejected)
    return stats
