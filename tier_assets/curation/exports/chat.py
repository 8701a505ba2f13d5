"""SFT chat records from the tiers' structured fields (``signals.l3.fields``, ``signals.l4``).

Never from rendered text: L3 already parsed and verified its output into fields,
and re-parsing the rendering would guess at what L3 knows. A record whose fields
hold no exchange is an :class:`Unformattable` with a reason, counted in the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tier_assets.curation.schema import HAN

Message = dict[str, str]

# L3 formats whose fields hold a prompt and its answer: (user field, assistant field)
_PAIRS = {"qa": ("question", "answer"), "knowledge": ("exercise", "solution")}


@dataclass(frozen=True)
class Unformattable:
    """Why a record cannot be a chat record (a key of the manifest's ``skipped``)."""

    reason: str


def chat_messages(tier: str, signals: Mapping[str, Any]) -> list[Message] | Unformattable:
    """An L3 / L4 record's chat messages, from ``signals[tier]``.

    L3: a Q&A is question -> answer, a knowledge point exercise -> solution, a dialogue
    its turns (the first speaker is the user). L4: a definition is a question about its
    term (:func:`definition_messages`). Everything else holds no question.
    """
    if tier not in ("L3", "L4"):
        return Unformattable(f"not_chat_tier:{tier}")
    sig = signals.get(tier.lower())
    if not isinstance(sig, Mapping):
        return Unformattable(f"{tier.lower()}_no_signals")
    return _l3_messages(sig) if tier == "L3" else _l4_messages(sig)


def _l3_messages(l3: Mapping[str, Any]) -> list[Message] | Unformattable:
    fmt = l3.get("format")
    fields = l3.get("fields")
    if not isinstance(fields, Mapping) or not fields:
        return Unformattable("l3_no_fields")
    if fmt == "dialogue":
        return _dialogue(fields.get("turns"))
    if fmt not in _PAIRS:
        return Unformattable(f"l3_not_an_exchange:{fmt}")
    prompt, answer = (str(fields.get(name) or "").strip() for name in _PAIRS[fmt])
    if not prompt or not answer:
        return Unformattable(f"l3_incomplete_fields:{fmt}")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def _dialogue(turns: Any) -> list[Message] | Unformattable:
    """Turns -> alternating user / assistant messages; a trailing user turn has no answer and is dropped."""
    if not isinstance(turns, list) or not all(
        isinstance(t, Mapping) and t.get("speaker") and str(t.get("text") or "").strip() for t in turns
    ):
        return Unformattable("l3_incomplete_fields:dialogue")
    user = turns[0]["speaker"] if turns else None
    messages: list[Message] = []
    for turn in turns:
        role = "user" if turn["speaker"] == user else "assistant"
        content = str(turn["text"]).strip()
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + content
        else:
            messages.append({"role": role, "content": content})
    while messages and messages[-1]["role"] == "user":
        messages.pop()
    return messages if len(messages) >= 2 else Unformattable("l3_one_sided_dialogue")


def _l4_messages(l4: Mapping[str, Any]) -> list[Message] | Unformattable:
    kind = l4.get("kind")
    if kind == "qa":
        question, answer = str(l4.get("question") or "").strip(), str(l4.get("claim") or "").strip()
        if not question or not answer:
            return Unformattable("l4_incomplete_fields:qa")
        return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    if kind != "definition":
        return Unformattable(f"l4_no_question:{kind}")
    term, claim = str(l4.get("term") or "").strip(), str(l4.get("claim") or "").strip()
    if not term or not claim:
        return Unformattable("l4_incomplete_fields:definition")
    return definition_messages(term, claim, l4.get("methods") or ())


def definition_messages(term: str, claim: str, methods: Sequence[str]) -> list[Message]:
    """A verified definition as "What is TERM?" answered by its claim (ADR 12)."""
    if "rule:docstring" in methods:
        question = f"What does `{term}` do in Python?"
    elif HAN.search(term):
        question = f"什么是{term}？"
    else:
        question = f"What is {term}?"
    return [{"role": "user", "content": question}, {"role": "assistant", "content": claim}]
