"""L3 refined: budgeted LLM rewriting and synthesis of the best L2 documents, verified against the source."""
