"""One L4 partition: extract from L2 / L3 documents, verify, organize.

Rule items come from every document; LLM extraction runs best-first (score,
then doc id) while the token budget lasts, and each batch's claims are judged
right after it, so the judge is paid from the same budget and a run never
extracts what it can no longer verify. Every item first passes the knowledge
checks (``checks.py``: no opinions, fragments, context-bound or time-relative
claims, promotion; free, so before the paid judge). Every item that is not kept
goes to the rejected set with its stage and reason (extraction outputs that do
not parse, claims without evidence, ``l4_check:<name>`` knowledge checks, failed
verification); merged duplicates live on inside
their kept record (``members`` and ``evidence``), so extracted items = sum of
``members`` over kept records + rejected items.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from tier_assets.curation import llm_cache
from tier_assets.curation.l3.budget import TokenBudget, prompt_tokens
from tier_assets.curation.l3.prompts import code_language
from tier_assets.curation.l3.refine import rank_by_score, source_span
from tier_assets.curation.l4.checks import CHECK_STAGE, screen_items
from tier_assets.curation.l4.extract import (
    EXTRACT_PROMPT_VERSION,
    Item,
    anchor_claims,
    extraction_prompt,
    parse_extraction,
    rule_items,
)
from tier_assets.curation.l4.organize import STAGE, organize
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.l4.verify import verify_items
from tier_assets.curation.llm_cache import LLMCache, Request
from tier_assets.curation.models.embedder import Embedder
from tier_assets.curation.models.llm import LLM, refusal_reason
from tier_assets.curation.pipeline import Doc, reject
from tier_assets.curation.schema import derive_doc_id, stable_id


def _rejected(parent: Doc | Item, kind: str, text: str, method: str, stage: str, reason: str, detail: str,
              models: dict[str, Any], pointer: dict[str, Any] | None = None,
              verification: dict[str, Any] | None = None, subject: str | None = None) -> Doc:
    doc_id = parent.doc_id if isinstance(parent, Item) else str(parent["doc_id"])
    domain = parent.domain if isinstance(parent, Item) else parent["domain"]
    batch = parent.batch if isinstance(parent, Item) else parent["batch"]
    where = f"{pointer['start']}:{pointer['end']}" if pointer else ""
    rec = {
        "doc_id": derive_doc_id("L4", [doc_id], variant=f"rejected:{method}:{kind}:{where}:{stable_id(text)}"),
        "parent_ids": [doc_id], "tier": "L4", "domain": domain, "batch": batch, "text": text,
        "signals": {STAGE: {"kind": kind, "subject": subject, "methods": [method], "evidence": [pointer] if pointer else [],
                            "verification": verification or {}, "prompt_version": EXTRACT_PROMPT_VERSION}},
        "models": dict(models),
    }
    return reject(rec, stage, reason, detail)


def build_l4_partition(source_docs: Sequence[Doc], llm: LLM | None, embedder: Embedder,
                       config: L4Settings | None = None,
                       progress: Callable[[str], None] | None = None,
                       cache: LLMCache | None = None) -> tuple[list[Doc], list[Doc], dict[str, Any]]:
    """L4 records of one partition from its L2 and L3 documents: (kept, rejected, stats).

    ``llm`` may be None (rule extraction only). With a ``cache``, extractions and
    judgements already paid for are read back (and charged to the budget alike). Stats: documents, items extracted
    per method, verified, rejected by reason, items per document, the budget
    (``budget_tokens``, ``spent_tokens``, ``spent_by_kind``, ``budget_exhausted``),
    the merge (``merged``, support histogram, topics) and timings.
    """
    config = config or L4Settings()
    started = time.perf_counter()
    use_llm = config.llm_extraction and llm is not None
    models = {"l4": {"llm": llm.model_id, "backend": llm.backend} if use_llm else {"llm": None, "backend": None}}
    sources = {str(d["doc_id"]): d.get("text") or "" for d in source_docs}
    budget = TokenBudget(config.budget_tokens)
    verified: list[Item] = []
    rejected: list[Doc] = []
    extracted = Counter[str]()

    def fail(item: Item, reason: str, detail: str, stage: str = "l4_verify") -> None:
        rejected.append(_rejected(item, item.kind, item.text, item.method, stage, reason, detail, models,
                                  item.pointer(), item.verification, item.subject))

    def knowledge(items: list[Item]) -> list[Item]:
        """The items that pass the knowledge checks (free, so run before the paid judge); the rest rejected."""
        ok, bad = screen_items(items, config.max_item_chars)
        for item, failure in bad:
            fail(item, failure.reason, failure.detail, CHECK_STAGE)
        return ok

    if config.rule_extraction:
        items = [it for d in source_docs for it in rule_items(d, config)]
        extracted["rule"] += len(items)
        ok, bad = verify_items(knowledge(items), sources, None, config)
        verified += ok
        for item, reason, detail in bad:
            fail(item, reason, detail)

    exhausted = False
    calls = 0
    if use_llm:
        priors: dict[str, float] = {}
        pending = rank_by_score(source_docs)[: config.max_llm_docs]
        planned, llm_start = len(pending), time.perf_counter()
        judge_hold = config.judge_reserve_tokens if config.judge else 0
        while pending and not exhausted:
            batch: list[tuple[Doc, tuple[int, int], list[dict[str, str]], int, int]] = []
            while pending and len(batch) < config.batch_size:
                doc = pending[0]
                span = source_span(sources[str(doc["doc_id"])], str(doc["domain"]), code_language(doc.get("meta")),
                                   config.max_source_chars)
                excerpt = sources[str(doc["doc_id"])][span[0]:span[1]]
                if len(excerpt.strip()) < config.min_sentence_chars:
                    pending.pop(0)
                    continue
                prompt = extraction_prompt(excerpt)
                n_in = prompt_tokens(llm, prompt)
                max_new = min(config.max_new_tokens, budget.available - n_in - judge_hold)
                if max_new < config.min_new_tokens or not budget.reserve(n_in + max_new + judge_hold):
                    exhausted = True
                    break
                pending.pop(0)
                batch.append((doc, span, prompt, n_in + max_new, max_new))
            if not batch:
                break
            requests = [Request(str(b[0]["doc_id"]), "l4:extract", b[2]) for b in batch]
            gens = llm_cache.generate(llm, cache, requests, EXTRACT_PROMPT_VERSION,
                                      max_new_tokens=min(b[4] for b in batch), temperature=config.temperature,
                                      no_repeat_ngram=config.no_repeat_ngram)
            calls += len(batch)
            claimed: list[Item] = []
            for (doc, span, _, hold, _), gen in zip(batch, gens, strict=True):
                budget.settle(hold, gen.tokens_in + gen.tokens_out, "extract")
                budget.settle(judge_hold, 0, "judge")  # verify_items reserves the exact judge cost
                claims, reason = parse_extraction(gen.text, gen.finish_reason)
                reason = refusal_reason(gen) or reason  # the prompt guard refused the source text
                if reason:
                    extracted["llm_failed_outputs"] += 1
                    rejected.append(_rejected(doc, "extraction", gen.text, "llm", "l4_extract", reason,
                                              f"finish_reason={gen.finish_reason}, tokens_out={gen.tokens_out}",
                                              models))
                    continue
                extracted["llm"] += len(claims)
                items, failures = anchor_claims(doc, span, claims, config)
                claimed += items
                for kind, text, why, detail in failures:
                    rejected.append(_rejected(doc, kind, text, "llm", "l4_extract", why, detail, models))
            ok, bad = verify_items(knowledge(claimed), sources, llm, config, budget, priors, cache)
            verified += ok
            for item, reason, detail in bad:
                fail(item, reason, detail)
            if progress:
                elapsed = max(time.perf_counter() - llm_start, 1e-9)
                done = planned - len(pending)
                progress(f"L4: {done}/{planned} documents through the LLM ({calls} calls), {len(verified)} verified "
                         f"items, {budget.spent}/{budget.limit} tokens, ETA {len(pending) * elapsed / done:.0f}s "
                         "(or sooner if the budget runs out)" + (f"; LLM requests: {cache.summary()}" if cache else ""))

    kept, organized = organize(verified, embedder, config, models)
    n_docs = len(source_docs)
    stats: dict[str, Any] = {
        "docs_in": n_docs, "llm_calls": calls, "extracted": dict(extracted), "verified": len(verified),
        "verified_by_method": dict(Counter(i.method for i in verified)),
        "kept": len(kept), "rejected": len(rejected), "reasons": dict(Counter(r["reason"] for r in rejected)),
        "items_per_doc": round(len(kept) / n_docs, 4) if n_docs else 0.0,
        **budget.report(), "budget_exhausted": exhausted, **organized,
        "seconds": round(time.perf_counter() - started, 3), "prompt_version": EXTRACT_PROMPT_VERSION,
        "llm_cache": cache.report() if cache else None,
    }
    return kept, rejected, stats
