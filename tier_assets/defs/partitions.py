"""Every tier is partitioned the same way: domain (static) x batch (dynamic)."""

from __future__ import annotations

from dagster import (
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from tier_assets.curation.schema import DOMAINS

BATCH_PARTITIONS_NAME = "batch"
domain_partitions = StaticPartitionsDefinition(list(DOMAINS))
batch_partitions = DynamicPartitionsDefinition(name=BATCH_PARTITIONS_NAME)
tier_partitions = MultiPartitionsDefinition({"domain": domain_partitions, "batch": batch_partitions})


def partition_key(domain: str, batch: str) -> MultiPartitionKey:
    return MultiPartitionKey({"domain": domain, "batch": batch})


def split_key(key: str | MultiPartitionKey) -> tuple[str, str]:
    """(domain, batch) of a partition key, from a MultiPartitionKey or its ``batch|domain`` string."""
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
    else:
        batch, domain = str(key).split("|", 1)
        dims = {"domain": domain, "batch": batch}
    return dims["domain"], dims["batch"]
