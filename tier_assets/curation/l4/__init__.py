"""L4 organized: ``build.l4_stages`` = rank the sources, extract and verify items per document (rules, and
the LLM under the budget), merge and topic-tag the partition; ``tier`` stores, checks evidence and indexes."""
