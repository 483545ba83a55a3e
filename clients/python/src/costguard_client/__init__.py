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
    BadResponse,
    CommitNotLanded,
    ConfigurationError,
    Conflict,
    CostGuardError,
    CostGuardUnavailable,
    Forbidden,
    InvalidArgument,
    InvalidRequest,
    NotFound,
    OverrunRejected,
    QuotaExceeded,
    ReservationNotHeld,
    TenantPaused,
    Throttled,
    Unauthorized,
)
from costguard_client.sse import aguarded_stream, guarded_stream, sse_event
from costguard_client.streams import StreamUsage

__all__ = [
    "AsyncCostGuard",
    "AsyncHold",
    "BadResponse",
    "CommitNotLanded",
    "ConfigurationError",
    "Conflict",
    "CostGuard",
    "CostGuardError",
    "CostGuardUnavailable",
    "Forbidden",
    "Hold",
    "InvalidArgument",
    "InvalidRequest",
    "NotFound",
    "OverrunRejected",
    "QuotaExceeded",
    "ReservationNotHeld",
    "RetryPolicy",
    "StreamUsage",
    "TenantPaused",
    "Throttled",
    "TokenUsage",
    "Unauthorized",
    "__version__",
    "aguarded_stream",
    "guarded_stream",
    "sse_event",
    "token_usage",
]
