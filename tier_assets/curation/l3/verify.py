"""Verification of LLM outputs against their source, shared by L3 (edits) and L4 (facts).

Three independent signals, cheapest first, so the LLM is only asked about
outputs that survived the free checks:

* rule checks: a rewrite may not contain a number, a formula or a named entity
  that its source does not contain (the classic hallucinations of rewriting);
  a documented code rewrite must leave the code itself unchanged (same AST);
* semantic similarity of output and source (normalized embeddings, cosine);
* an LLM faithfulness judgement read from next-token probabilities of "Yes" and
  "No" (no text to parse, graded). Small models answer "No" to nearly anything,
  so the probability is contextually calibrated (Zhao et al., 2021): divided by
  the model's answer for the same evidence and a content-free claim ("N/A"), so
  0.5 means "no more likely than for no claim at all", whatever the model's bias.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence

import numpy as np

from tier_assets.curation import llm_cache
from tier_assets.curation.l3.budget import TokenBudget, prompt_tokens
from tier_assets.curation.llm_cache import LLMCache, Request
from tier_assets.curation.models.embedder import Embedder
from tier_assets.curation.models.llm import LLM, Message, TransformersLLM

RULES = ("numbers", "formulas", "entities")
NULL_CLAIM = "N/A"
JUDGE_PROMPT_VERSION = "judge-2025.1"  # bump when judge_prompt or JUDGE_SYSTEM changes
JUDGE_SYSTEM = ("You check facts. Answer Yes if everything the claim says is supported by the passage, and No if "
                "it is not.")

# ---------------------------------------------------------------------------------------------- numbers

_NUMBER = re.compile(r"(?<![\d.,])\d+(?:,\d{3})*(?:\.\d+)?|(?<![\d.,])\d+(?:\.\d+)?")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]\s*)?(?:step\s+)?\d{1,2}[.):]\s", re.IGNORECASE | re.MULTILINE)
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
    "half": "0.5", "once": "1", "twice": "2", "single": "1", "double": "2", "first": "1", "second": "2",
    "third": "3",
}
_ZH_DIGITS = {"零": "0", "〇": "0", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6",
              "七": "7", "八": "8", "九": "9", "十": "10", "百": "100", "千": "1000", "万": "10000", "亿": "100000000"}


def _norm_number(token: str) -> str:
    token = token.replace(",", "")
    if "." in token:
        token = token.rstrip("0").rstrip(".")
    return token.lstrip("0") or "0"


def numbers(text: str, with_words: bool = False) -> set[str]:
    """Normalized numbers written with digits (``1,000`` = ``1000``, ``3.50`` = ``3.5``).

    With ``with_words`` also the numbers written as words (English, single Chinese
    numerals): a source saying "two" supports an output saying "2".
    """
    found = {_norm_number(m.group()) for m in _NUMBER.finditer(text)}
    if with_words:
        found |= {v for w, v in _NUMBER_WORDS.items() if re.search(rf"\b{w}\b", text, re.IGNORECASE)}
        found |= {v for ch, v in _ZH_DIGITS.items() if ch in text}
    return found


def unsupported_numbers(output: str, source: str) -> list[str]:
    """Numbers of ``output`` its source lacks (line-start list markers like "1." are not claims)."""
    have = numbers(source, with_words=True)
    prose = _LIST_MARKER.sub(" ", _FORMULA.sub(" ", output))  # numbers inside formulas: the formula rule
    return sorted(numbers(prose) - have, key=lambda s: (len(s), s))


# ---------------------------------------------------------------------------------------------- formulas

_FORMULA = re.compile(
    r"\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]|"
    r"\\begin\{(equation|align|gather|multline|eqnarray)(\*?)\}(.+?)\\end\{\5\6\}",
    re.DOTALL,
)


def formulas(text: str) -> list[str]:
    """Formula bodies in ``text``: ``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]`` and equation environments."""
    out = []
    for m in _FORMULA.finditer(text):
        body = next(g for i, g in enumerate(m.groups()) if g is not None and i not in (4, 5))
        out.append(body.strip())
    return out


def unsupported_formulas(output: str, source: str) -> list[str]:
    """Formulas of ``output`` that do not occur in the source (whitespace ignored, delimiters optional)."""
    flat = re.sub(r"\s+", "", source)
    return [f for f in formulas(output) if re.sub(r"\s+", "", f) not in flat]


# ---------------------------------------------------------------------------------------------- entities

_TOKEN = re.compile(r"[^\W\d_][\w'’\-]*|\d[\w\-]*")
_CONNECTORS = {"of", "the", "de", "del", "la", "le", "von", "van", "der", "da", "du", "and", "for", "y"}
_FUNCTION_WORDS = {
    "the", "a", "an", "in", "on", "at", "by", "for", "from", "to", "of", "as", "this", "that", "these", "those",
    "it", "its", "they", "their", "there", "here", "we", "our", "you", "your", "he", "she", "his", "her", "if",
    "when", "while", "after", "before", "during", "since", "because", "although", "however", "thus", "so",
    "then", "also", "both", "each", "every", "all", "some", "many", "most", "one", "with", "without", "what",
    "why", "how", "who", "which", "where", "yes", "no", "not", "but", "and", "or", "today", "finally",
}
_BOUNDARY = set(".!?:;\"“”'‘’«»()[]")
_BULLET = re.compile(r"^\s*(?:[-*•>#]+|\d{1,2}[.)])?\s*")


def _is_heading(line: str) -> bool:
    s = line.strip()
    words = s.split()
    return s.startswith("#") or s.endswith(":") or (len(words) <= 6 and not _BULLET.match(s).group().strip()
                                                      and s[-1:] not in ".!?。")


def _run_entity(run: list[str], initial: bool) -> str | None:
    """The entity a run of capitalized words names, or None (a lone sentence-initial word, "I")."""
    words = list(run)
    while words and words[-1].lower() in _CONNECTORS:
        words.pop()
    if words and initial and words[0].lower() in _FUNCTION_WORDS:
        words.pop(0)
    if not words or (len(run) == 1 and initial) or words == ["I"]:
        return None
    return " ".join(words)


def _capital_runs(line: str) -> list[tuple[list[str], bool]]:
    """Runs of capitalized words (connectors like "of" may sit inside) and whether each starts a sentence."""
    start = _BULLET.match(line).end()
    runs: list[tuple[list[str], bool]] = []
    run: list[str] = []
    prev_end = start
    for m in _TOKEN.finditer(line, start):
        word, gap = m.group(), line[prev_end:m.start()]
        joins = bool(run) and not any(ch in _BOUNDARY or ch == "," for ch in gap)
        if joins and (word[0].isupper() or word in _CONNECTORS):
            run.append(word)
        elif word[0].isupper():
            initial = m.start() == start or any(ch in ".!?:" for ch in gap)
            run = [word]
            runs.append((run, initial))
        else:
            run = []
        prev_end = m.end()
    return runs


def entities(text: str) -> list[str]:
    """Named-entity candidates: runs of capitalized words (``New York``, ``Albert Einstein``), capitalized
    words inside a sentence (``Paris``, ``ATP``) and tokens mixing letters and digits (``COVID-19``).

    A capitalized word that only starts a sentence or a heading line is not an entity.
    """
    found: list[str] = []
    for line in _FORMULA.sub(" ", text).splitlines():
        if not line.strip() or _is_heading(line):
            continue
        found += [t for t in _TOKEN.findall(line)
                  if any(ch.isdigit() for ch in t) and any(ch.isalpha() for ch in t)]
        found += [e for run, initial in _capital_runs(line) if (e := _run_entity(run, initial))]
    return list(dict.fromkeys(found))


def unsupported_entities(output: str, source: str) -> list[str]:
    """Entities of ``output`` with a word the source never uses (case-insensitive)."""
    words = {w.lower() for w in _TOKEN.findall(source)}
    missing = []
    for ent in dict.fromkeys(entities(output)):
        parts = [w for w in ent.split() if w.lower() not in _CONNECTORS]
        if any(w.lower() not in words for w in parts):
            missing.append(ent)
    return missing


_CHECKS = {"numbers": unsupported_numbers, "formulas": unsupported_formulas, "entities": unsupported_entities}


def check_rules(rules: Sequence[str], output: str, source: str) -> tuple[str, str] | None:
    """The first failed rule as (reason, detail), e.g. ("unsupported_numbers", "1857, 330"); None if all pass."""
    for rule in rules:
        if rule not in _CHECKS:
            raise ValueError(f"unknown rule {rule!r}; known: {RULES}")
        bad = _CHECKS[rule](output, source)
        if bad:
            return f"unsupported_{rule}", ", ".join(bad[:10])
    return None


# ---------------------------------------------------------------------------------------------- code

_HASH_COMMENTS = {"python", "shell", "ruby", "perl", "r", "julia", "elixir", "powershell"}
_DASH_COMMENTS = {"lua", "haskell", "sql"}


class _StripDocstrings(ast.NodeTransformer):
    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:]
        return node


def _docs_count(code: str, language: str) -> int:
    """Documentation in ``code``: comments plus (Python) docstrings."""
    if language == "python":
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return code.count("#")
        docs = sum(ast.get_docstring(n, clean=False) is not None for n in ast.walk(tree)
                   if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef))
        return docs + sum(line.lstrip().startswith("#") for line in code.splitlines())
    marker = "#" if language in _HASH_COMMENTS else "--" if language in _DASH_COMMENTS else "//"
    return code.count(marker) + code.count("/*")


def _code_tokens(code: str, language: str) -> str:
    if language in _HASH_COMMENTS:
        code = re.sub(r"#[^\n]*", "", code)
    elif language in _DASH_COMMENTS:
        code = re.sub(r"--[^\n]*", "", code)
    else:
        code = re.sub(r"/\*.*?\*/|//[^\n]*", "", code, flags=re.DOTALL)
    return re.sub(r"\s+", "", code)


def code_changes(source: str, output: str, language: str) -> tuple[str, str] | None:
    """Why a documented rewrite is not the same code plus documentation, or None if it is.

    Python: the ASTs without docstrings must be equal (comments are not in the
    AST), so renamed variables, edited logic or dropped lines all fail. Other
    languages: equal token streams once comments and whitespace are removed.
    """
    if language == "python":
        try:
            src_tree = ast.parse(source)
        except SyntaxError:
            src_tree = None
        if src_tree is not None:
            try:
                out_tree = ast.parse(output)
            except SyntaxError as exc:
                return "code_changed", f"output does not parse: {exc.msg} (line {exc.lineno})"
            if ast.dump(_StripDocstrings().visit(out_tree)) != ast.dump(_StripDocstrings().visit(src_tree)):
                return "code_changed", "the code differs from the source beyond docstrings and comments"
    elif _code_tokens(output, language) != _code_tokens(source, language):
        return "code_changed", "the code differs from the source beyond comments and whitespace"
    if _docs_count(output, language) <= _docs_count(source, language):
        return "no_documentation", "no docstring or comment was added"
    return None


# ---------------------------------------------------------------------------------------------- similarity


def similarities(embedder: Embedder, outputs: Sequence[str], sources: Sequence[str]) -> np.ndarray:
    """Cosine similarity of each output with its source (the embedder normalizes)."""
    if not outputs:
        return np.zeros(0, dtype=np.float32)
    unique = list(dict.fromkeys(sources))
    src = embedder.encode(unique)
    row = {s: i for i, s in enumerate(unique)}
    out = embedder.encode(list(outputs))
    return np.einsum("ij,ij->i", out, src[[row[s] for s in sources]])


# ---------------------------------------------------------------------------------------------- LLM judge


def judge_prompt(evidence: str, claim: str) -> list[Message]:
    """Asks whether ``evidence`` supports ``claim``; answered by one token, Yes or No."""
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": f"Passage: {evidence}\nClaim: {claim}\nIs the claim supported by the "
                                        "passage? Answer Yes or No."}]


def yes_probabilities(llm: LLM, prompts: Sequence[list[Message]], cache: LLMCache | None = None,
                      doc_ids: Sequence[str | None] | None = None, task: str = "judge") -> list[float]:
    """P(Yes) / (P(Yes) + P(No)) of each prompt's first answer token (NaN if the backend sees neither).

    With a ``cache``, judgements already paid for (same document, prompt and model) are not asked again.
    """
    ids = list(doc_ids) if doc_ids is not None else [None] * len(prompts)
    requests = [Request(doc_id, task, prompt) for doc_id, prompt in zip(ids, prompts, strict=True)]
    out = []
    for lp in llm_cache.next_token_logprobs(llm, cache, requests, ["Yes", "No"], JUDGE_PROMPT_VERSION):
        yes, no = lp["Yes"], lp["No"]
        top = max(yes, no)
        out.append(math.nan if top == -math.inf else math.exp(yes - top) / (math.exp(yes - top) + math.exp(no - top)))
    return out


def calibrate(p: float, prior: float) -> float:
    """Contextual calibration: ``p`` re-weighted by the model's answer ``prior`` for a content-free claim."""
    if math.isnan(p) or math.isnan(prior) or prior in (0.0, 1.0):
        return p
    yes, no = p / prior, (1 - p) / (1 - prior)
    return yes / (yes + no)


def judge_cost(llm: LLM, prompt: list[Message]) -> int:
    """Tokens one judgement costs: the prompt (prefill), plus the one token an endpoint generates."""
    return prompt_tokens(llm, prompt) + (0 if isinstance(llm, TransformersLLM) else 1)


def judge_pairs(llm: LLM, pairs: Sequence[tuple[str, str]], budget: TokenBudget | None = None,
                calibrated: bool = True, max_chars: int = 1500,
                priors: dict[str, float] | None = None, cache: LLMCache | None = None,
                doc_ids: Sequence[str] | None = None, task: str = "judge") -> list[float | None]:
    """Faithfulness of each (evidence, claim) pair in [0, 1]; None where the budget could not pay for it.

    Calibration costs one extra prompt per distinct evidence text; pass a
    ``priors`` dict to share those across calls (it is filled in). Both texts are
    cut to ``max_chars`` so a judgement has a bounded cost. With a ``cache`` (and
    ``doc_ids``, the document of each pair's evidence), judgements already paid for
    are read back instead of asked, and the budget is charged the same tokens.
    """
    pairs = [(e[:max_chars], c[:max_chars]) for e, c in pairs]
    doc_of: dict[str, str | None] = {}
    for (e, _), doc_id in zip(pairs, doc_ids if doc_ids is not None else [None] * len(pairs), strict=True):
        doc_of.setdefault(e, doc_id)
    priors = {} if priors is None else priors
    fresh = [e for e in dict.fromkeys(e for e, _ in pairs) if e not in priors] if calibrated else []
    prompts: list[list[Message]] = []
    prompt_docs: list[str | None] = []
    index: dict[tuple[str, str], int] = {}
    costs: list[int] = []
    for key in [(e, NULL_CLAIM) for e in fresh] + pairs:
        if key in index:
            continue
        prompt = judge_prompt(*key)
        cost = judge_cost(llm, prompt)
        if budget is not None and not budget.reserve(cost):
            continue
        index[key] = len(prompts)
        prompts.append(prompt)
        prompt_docs.append(doc_of[key[0]])
        costs.append(cost)
    probs = yes_probabilities(llm, prompts, cache, prompt_docs, task) if prompts else []
    if budget is not None:
        for cost in costs:
            budget.settle(cost, cost, "judge")
    for e in fresh:
        if (e, NULL_CLAIM) in index:
            priors[e] = probs[index[(e, NULL_CLAIM)]]
    out: list[float | None] = []
    for e, c in pairs:
        if (e, c) not in index or (calibrated and e not in priors):
            out.append(None)
            continue
        p = probs[index[(e, c)]]
        out.append(calibrate(p, priors[e]) if calibrated else p)
    return out
