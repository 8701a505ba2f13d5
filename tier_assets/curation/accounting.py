"""Record accounting between tiers: nothing silently dropped, nothing written twice.

For one-to-one tiers (L0 -> L1, L1 -> L2) every upstream record of the partition
must appear exactly once downstream, kept or rejected, as the single parent of a
record. Checked from the written files, so it also catches a torn write.
"""

from __future__ import annotations

from collections import Counter

from tier_assets.curation.storage import PartitionRef, TierStore


def one_to_one_problems(store: TierStore, upstream_tier: str, tier: str, domain: str, batch: str) -> list[str]:
    """What breaks "every kept ``upstream_tier`` record is in ``tier`` kept or rejected, exactly once"."""
    upstream_ids = store.read(PartitionRef(upstream_tier, domain, batch), columns=["doc_id"])["doc_id"].to_pylist()
    ref = PartitionRef(tier, domain, batch)
    parents = [p for t in (store.read(ref, columns=["parent_ids"]), store.read(ref, "rejected", columns=["parent_ids"]))
               for ps in t["parent_ids"].to_pylist() for p in ps]
    problems = []
    if len(parents) != len(upstream_ids):
        problems.append(f"{tier} kept + rejected = {len(parents)} != {upstream_tier} input {len(upstream_ids)}")
    twice = sorted(p for p, n in Counter(parents).items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} {upstream_tier} records appear more than once in {tier} (e.g. {twice[:3]})")
    missing = set(upstream_ids) - set(parents)
    if missing:
        problems.append(f"{len(missing)} {upstream_tier} records missing from {tier} (e.g. {sorted(missing)[:3]})")
    extra = set(parents) - set(upstream_ids)
    if extra:
        problems.append(f"{len(extra)} {tier} records whose parent is not in {upstream_tier}")
    return problems
