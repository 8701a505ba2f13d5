"""The curation library: readers, mappers, filters, dedup, models and storage.

Nothing in this package imports Dagster, so every step can be used and tested on
its own; the Dagster assets in ``tier_assets.defs`` are thin adapters around it.
"""
