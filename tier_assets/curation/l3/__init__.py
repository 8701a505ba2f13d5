"""L3 refined: ``refine.l3_stages`` = rank the L2 partition, then refine document by document under the
token budget (generation, parsing, verification against the source); ``tier`` stores a partition."""
