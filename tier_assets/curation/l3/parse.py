"""Parse and validate L3 generations: the tagged structure, the language, and copying.

A generation either parses into the format's fields (plus a canonical rendering
used as the L3 text) or fails with one reason: ``empty``, ``truncated`` (hit
``max_new_tokens`` before the structure closed, or a tag never closed),
``unparseable`` (tags or turns missing), ``no_result`` (the model said the
source has nothing to extract), ``wrong_language`` or ``copies_prompt`` (it
parrots the instructions or a placeholder, or hands back the source instead of
new text). A complete structure followed by rambling cut at the token limit is
accepted: the structure is what L3 keeps. A one-field format (rewrite,
explanation, documented code) also accepts a bare answer, one with no tags at
all that ended on its own: small models often drop the tags of a single field,
and the field is then the whole answer (a lead-in line such as "Here is the
rewrite:" is dropped); every later check still applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tier_assets.curation.l1.langid import load_identifier, strip_latex
from tier_assets.curation.l3.prompts import FORMATS, SPEAKERS, prompt_language
from tier_assets.curation.schema import HAN

PARSE_REASONS = ("empty", "truncated", "unparseable", "no_result", "wrong_language", "copies_prompt")
EXPECTED_LANGUAGES: dict[str, tuple[str, ...]] = {
    "en": ("en",), "zh": ("zh", "wuu", "yue"), "math": ("en",), "code": ("en",),
}
_LABELS = {
    "en": {"question": "Question", "answer": "Answer", "knowledge": "Knowledge point", "exercise": "Exercise",
           "solution": "Solution"},
    "zh": {"question": "问题", "answer": "解答", "knowledge": "知识点", "exercise": "练习", "solution": "解答"},
}
_FENCE = re.compile(r"^\s*```[\w+.#-]*[ \t]*\n(.*?)\n?[ \t]*```\s*$", re.DOTALL)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    """A valid output: its fields, the canonical text L3 stores, and the part that makes claims."""

    fields: dict[str, Any]
    text: str
    claims: str  # what verification checks against the source (a math exercise is new by design)


@dataclass(frozen=True)
class Failure:
    reason: str
    detail: str


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def shingle_size(text: str) -> int:
    """Characters per shingle: about four words in alphabetic scripts, a short phrase in Chinese."""
    return 6 if len(HAN.findall(text)) > 0.3 * max(1, len(text)) else 20


def copied_fraction(text: str, reference: str) -> float:
    """Share of ``text``'s character shingles that also occur in ``reference`` (0 for short texts)."""
    a, b = normalize(text), normalize(reference)
    n = shingle_size(a)
    if len(a) < n or len(b) < n:
        return 0.0
    ref = {b[i:i + n] for i in range(len(b) - n + 1)}
    grams = [a[i:i + n] for i in range(len(a) - n + 1)]
    return sum(g in ref for g in grams) / len(grams)


def strip_fence(code: str) -> str:
    """Code without a surrounding Markdown fence (models add them inside the tag)."""
    m = _FENCE.match(code)
    return m.group(1) if m else code.strip("\n")


def identify_language(text: str, min_letters: int = 20) -> tuple[str, float] | None:
    """(label, probability) of the prose in ``text`` (code and LaTeX removed); None if too little prose."""
    prose = " ".join(strip_latex(_CODE.sub(" ", text)).split())
    if sum(ch.isalpha() for ch in prose) < min_letters:
        return None
    label, score = load_identifier().classify(prose[:2000])
    return label, float(score)


_LEAD_IN = re.compile(r"^[^\n]{0,80}[:：]\s*\n")


def _bare_answer(raw: str, finish_reason: str, lead_in: bool) -> str | None:
    """The whole answer as the single field, when it has no tags at all and was not cut off; ``lead_in``: drop a
    first line ending in a colon (prose only: in code that line is ``def f(x):``)."""
    if finish_reason != "stop" or re.search(r"</?[a-zA-Z]+\s*>", raw):
        return None
    text = raw.strip()
    return (_LEAD_IN.sub("", text, count=1) if lead_in else text).strip() or None


def _tag_content(raw: str, tag: str, finish_reason: str) -> str | Failure:
    m = re.search(rf"<{tag}\s*>(.*?)</{tag}\s*>", raw, re.DOTALL | re.IGNORECASE)
    if m:
        return m.group(1).strip()
    opened = re.search(rf"<{tag}\s*>", raw, re.IGNORECASE)
    if finish_reason == "length":
        where = f"inside <{tag}>" if opened else f"before <{tag}>"
        return Failure("truncated", f"hit max_new_tokens {where}")
    if opened:
        return Failure("truncated", f"<{tag}> never closed")
    return Failure("unparseable", f"no <{tag}>...</{tag}> in the output")


def _turns(body: str, speakers: tuple[str, str]) -> list[dict[str, str]] | Failure:
    names = "|".join(re.escape(s) for s in speakers)
    turn = re.compile(rf"^\W{{0,3}}({names})\W{{0,3}}\s*[:：]\s*(.*)$", re.IGNORECASE)
    turns: list[dict[str, str]] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        m = turn.match(line.strip())
        if m:
            speaker = next(s for s in speakers if s.lower() == m.group(1).lower())
            turns.append({"speaker": speaker, "text": m.group(2).strip()})
        elif turns:
            turns[-1]["text"] = f"{turns[-1]['text']} {line.strip()}".strip()
        else:
            return Failure("unparseable", f"dialogue line without a speaker: {line.strip()[:80]!r}")
    turns = [t for t in turns if t["text"]]
    if len(turns) < 2 or {t["speaker"] for t in turns} != set(speakers):
        return Failure("unparseable", f"{len(turns)} non-empty turn(s); need >= 2 with both {speakers}")
    return turns


def _render(fmt: str, fields: dict[str, Any], domain: str) -> tuple[str, str]:
    """(canonical text, claims text) of parsed fields."""
    labels = _LABELS[prompt_language(domain)]
    sep = "：" if prompt_language(domain) == "zh" else ": "
    if fmt == "qa":
        text = f"{labels['question']}{sep}{fields['question']}\n\n{labels['answer']}{sep}{fields['answer']}"
        return text, f"{fields['question']}\n{fields['answer']}"
    if fmt == "dialogue":
        text = "\n".join(f"{t['speaker']}{sep}{t['text']}" for t in fields["turns"])
        return text, "\n".join(t["text"] for t in fields["turns"])
    if fmt == "knowledge":
        text = "\n\n".join(f"{labels[k]}{sep}{fields[k]}" for k in ("knowledge", "exercise", "solution"))
        return text, fields["knowledge"]
    (value,) = fields.values()
    return value, value


def parse_output(fmt: str, variant: str, domain: str, raw: str, finish_reason: str, source: str,
                 instructions: str, copy_threshold: float = 0.8) -> Parsed | Failure:
    """Parse ``raw`` (a generation of ``fmt``) and validate it against ``source`` and the prompt.

    ``instructions`` is the prompt without the source (``prompts.instructions``);
    ``copy_threshold`` is the share of an output's shingles found in the source (or
    the instructions, at 0.5) from which it counts as a copy.
    """
    spec = FORMATS[fmt]
    if not raw.strip():
        return Failure("empty", f"no text generated (finish_reason={finish_reason})")
    fields: dict[str, Any] = {}
    bare = _bare_answer(raw, finish_reason, lead_in=fmt != "code_document") if len(spec.tags) == 1 else None
    for tag in spec.tags:
        content = bare or _tag_content(raw, tag, finish_reason)
        if isinstance(content, Failure):
            return content
        if not content:
            return Failure("empty", f"<{tag}> is empty")
        fields[tag] = strip_fence(content) if fmt == "code_document" else content
    if fmt == "knowledge" and normalize(fields["knowledge"]).strip(".") in ("none", "no result", "无"):
        return Failure("no_result", "the model found no definition or theorem in the source")
    if fmt == "dialogue":
        lang = prompt_language(domain)
        turns = _turns(fields.pop("dialogue"), SPEAKERS[lang][variant])
        if isinstance(turns, Failure):
            return turns
        fields["turns"] = turns
    text, claims = _render(fmt, fields, domain)

    parts = [t["text"] for t in fields["turns"]] if fmt == "dialogue" else list(fields.values())
    prompt_words = normalize(instructions)
    for part in parts:
        norm = normalize(part)
        if not norm.strip(". …"):
            return Failure("copies_prompt", f"placeholder {part!r} instead of content")
        if len(norm) >= 8 and norm in prompt_words:
            return Failure("copies_prompt", f"repeats the prompt's words {part[:80]!r}")
    if copied_fraction(text, instructions) >= 0.5:
        return Failure("copies_prompt", "repeats the instructions")
    if fmt == "code_document":
        if normalize(fields["code"]) == normalize(strip_fence(source)):
            return Failure("copies_prompt", "returns the source code unchanged (no documentation added)")
    else:
        share = copied_fraction(text, source)
        if share >= copy_threshold:
            return Failure("copies_prompt", f"copies the source ({share:.0%} of its shingles)")
        lang = identify_language(claims)
        expected = EXPECTED_LANGUAGES.get(domain, ("en",))
        if lang is not None and lang[0] not in expected and lang[1] >= 0.5:
            return Failure("wrong_language", f"lang={lang[0]} p={lang[1]:.2f}, expected {','.join(expected)}")
    return Parsed(fields, text, claims)
