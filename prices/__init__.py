"""`make prices`: the shipped price catalog, generated from a pinned LiteLLM price map."""
