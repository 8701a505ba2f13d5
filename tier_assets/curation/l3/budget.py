"""A per-partition LLM token budget that is never overspent.

LLM time is the scarce resource of L3 and L4, so every call (generation, judge,
calibration) is paid for in tokens in + tokens out. A call first *reserves* its
worst case (exact prompt tokens + the ``max_new_tokens`` it is allowed), runs,
then *settles* with what it really used and releases the rest. ``max_new_tokens``
is capped by what is left, so even outputs that run to the limit stay inside the
budget; a call whose worst case does not fit is simply not made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tier_assets.curation.models.llm import LLM, Prompt, TransformersLLM, as_messages

TEMPLATE_OVERHEAD = 8  # per message: role markers and separators of a chat template


def prompt_tokens(llm: LLM, prompt: Prompt) -> int:
    """Tokens the prompt costs: exact with a local tokenizer, else a safe upper bound.

    An endpoint's tokenizer is unknown here, so the bound counts one token per
    UTF-8 byte (byte-level BPE and SentencePiece with byte fallback never use
    fewer bytes than tokens) plus the chat template's markers.
    """
    if isinstance(llm, TransformersLLM):
        return len(llm.encode(llm.chat_text(prompt)))
    messages = as_messages(prompt)
    return sum(len(m["content"].encode("utf-8")) + TEMPLATE_OVERHEAD for m in messages) + TEMPLATE_OVERHEAD


@dataclass
class TokenBudget:
    """Reserve-then-settle accounting of one partition's LLM tokens."""

    limit: int
    spent: int = 0
    reserved: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"budget limit must be >= 0, got {self.limit}")

    @property
    def available(self) -> int:
        return self.limit - self.spent - self.reserved

    def reserve(self, tokens: int) -> bool:
        """Hold ``tokens`` for a call; False (nothing held) when they do not fit."""
        if tokens < 0 or tokens > self.available:
            return False
        self.reserved += tokens
        return True

    def settle(self, reserved: int, used: int, kind: str) -> None:
        """Release a reservation and charge what the call really used (under ``kind``)."""
        if used > reserved:
            raise RuntimeError(f"an LLM call used {used} tokens but reserved only {reserved}")
        self.reserved -= reserved
        self.spent += used
        self.by_kind[kind] = self.by_kind.get(kind, 0) + used

    def report(self) -> dict[str, int | dict[str, int]]:
        return {"budget_tokens": self.limit, "spent_tokens": self.spent, "spent_by_kind": dict(self.by_kind)}
