"""Model interfaces: embedder (sentence-transformers), vector search (FAISS), LLM backends."""
