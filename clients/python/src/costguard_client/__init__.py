"""costguard client: guard an LLM call in three lines.

guard = CostGuard("https://costguard.example.com", api_key="cg-…")
with guard.reserve("acme", user_id="u-42", model="gpt-4o", input_tokens=1200,
                   max_output_tokens=800) as hold:
    response = openai.chat.completions.create(...)
    hold.commit(usage=response.usage)
"""

from costguard_client._core import RetryPolicy
from costguard_client._version import __version__
from costguard_client.adapters import TokenUsage, token_usage
from costguard_client.aio import AsyncCostGuard, AsyncHold
from costguard_client.client import CostGuard, Hold
from costguard_client.errors import (
    CostGuardError,
    CostGuardUnavailable,
    QuotaExceeded,
    TenantPaused,
)
from costguard_client.sse import aguarded_stream, guarded_stream, sse_event

__all__ = [
    "AsyncCostGuard",
    "AsyncHold",
    "CostGuard",
    "CostGuardError",
    "CostGuardUnavailable",
    "Hold",
    "QuotaExceeded",
    "RetryPolicy",
    "TenantPaused",
    "TokenUsage",
    "__version__",
    "aguarded_stream",
    "guarded_stream",
    "sse_event",
    "token_usage",
]
