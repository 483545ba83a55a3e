"""costguard client: guard an LLM call in three lines."""

__version__ = "0.1.0"
