"""L1 filtered: ``tier.l1_stages`` = URL safety, mappers, language id, content safety, rule filters,
decontamination, PII (record stages), then dedup against earlier batches (a partition step)."""
