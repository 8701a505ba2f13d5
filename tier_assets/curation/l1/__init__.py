"""L1 filtered tier: mappers, rule filters, language id, PII, decontamination, dedup."""
