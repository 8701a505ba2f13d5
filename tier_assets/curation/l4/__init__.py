"""L4 organized: verifiable knowledge items with evidence pointers, merged, topic-tagged and indexed."""
