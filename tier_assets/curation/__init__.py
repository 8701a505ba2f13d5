"""The curation library: each tier is a list of stages of one shape (``pipeline.py``).

``l1.tier.l1_stages``, ``l2.tier.l2_stages``, ``l3.refine.l3_stages`` and
``l4.build.l4_stages`` list them: record stages (pure over a batch) and partition
steps (the whole partition at once), each declaring its resources and taking its
models in ``setup``. Nothing here imports Dagster, so every stage can be used and
tested on its own; the assets in ``tier_assets.defs`` are thin adapters around it.
"""
