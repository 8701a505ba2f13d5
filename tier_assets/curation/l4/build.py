"""One L4 partition: extract from L2 / L3 documents, verify, organize.

Rule items come from every document; LLM extraction runs best-first (score,
then doc id) while the token budget lasts, and each batch's claims are judged
right after it, so the judge is paid from the same budget and a run never
extracts what it can no longer verify. Every item first passes the knowledge
checks (``checks.py``: no opinions, fragments, context-bound or time-relative
claims, promotion; free, so before the paid judge); with ``knowledge_scorer`` (en
by default) the items they pass are scored by the knowledge scorer (``scorer.py``:
the embedder, loaded once per stage; ``l4_check:not_knowledge_scorer``); with
``knowledge_judge`` the items still kept are then judged by the LLM (``judge.py``,
paid from the budget, ``l4_check:not_knowledge``). Every item that is not kept
goes to the rejected set with its stage and reason (extraction outputs that do
not parse, claims without evidence, ``l4_check:<name>`` knowledge checks, failed
verification, ``l4_conflict``); merged duplicates live on inside
their record (``members`` and ``evidence``), so extracted items = sum of
``members`` over kept and conflict-rejected records + the other rejected items.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tier_assets.curation import llm_cache
from tier_assets.curation.l3.budget import TokenBudget, prompt_tokens
from tier_assets.curation.l3.prompts import code_language
from tier_assets.curation.l3.refine import rank_by_score, source_span
from tier_assets.curation.l4.checks import CHECK_STAGE, screen_items
from tier_assets.curation.l4.consistency import check_consistency
from tier_assets.curation.l4.extract import (
    EXTRACT_PROMPT_VERSION,
    Item,
    anchor_claims,
    extraction_prompt,
    parse_extraction,
    rule_items,
)
from tier_assets.curation.l4.judge import NOT_KNOWLEDGE, judge_knowledge
from tier_assets.curation.l4.organize import STAGE, item_record, organize
from tier_assets.curation.l4.scorer import KnowledgeScorer, screen_with_scorer
from tier_assets.curation.l4.settings import L4Settings
from tier_assets.curation.l4.verify import verify_items
from tier_assets.curation.llm_cache import LLMCache, Request
from tier_assets.curation.models.embedder import Embedder
from tier_assets.curation.models.llm import LLM, refusal_reason
from tier_assets.curation.pipeline import (
    Doc,
    Models,
    PartitionStep,
    Pipeline,
    RecordStage,
    Resources,
    StageStats,
    StepResult,
    reject,
)
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


class ExtractItems(RecordStage):
    """Items from each source document: rules always, the LLM for the best ``max_llm_docs`` while the budget lasts.

    Source documents arrive best first (``RankSources``); every item passes the
    knowledge checks (free), with ``knowledge_scorer`` the scorer (the embedder, no
    budget), and is then verified (span, key terms, and for LLM
    items the entailment judge, paid from the same budget). Kept: verified item
    records; rejected: every item or extraction output that failed, with its reason.
    The budget carries across batches, as in L3's ``Refine``.
    """

    name = "l4_extract"
    resources = Resources(cpus=1.0, memory_gb=4.0, models=("llm",))

    def __init__(self, config: L4Settings, cache: LLMCache | None = None,
                 progress: Callable[[str], None] | None = None):
        self.config, self.cache, self.progress = config, cache, progress
        if config.knowledge_scorer:
            self.resources = Resources(cpus=1.0, memory_gb=4.0, models=("llm", "embedder"))
        self.budget = TokenBudget(config.budget_tokens)
        self.extracted = Counter[str]()
        self.priors: dict[str, float] = {}
        self.calls = 0
        self.llm_docs_seen = 0
        self.exhausted = False
        self.verified_methods = Counter[str]()
        self.started = time.perf_counter()

    def setup(self, models: Models) -> None:
        self.llm: LLM | None = models.llm if self.config.llm_extraction else None
        self.judge_llm: LLM | None = models.llm if self.config.knowledge_judge else None
        self.scorer: tuple[KnowledgeScorer, Embedder] | None = (
            (KnowledgeScorer.load(), models.require("embedder", self.name)) if self.config.knowledge_scorer else None)
        self.models: dict[str, Any] = {"l4": {"llm": self.llm.model_id, "backend": self.llm.backend}
                                       if self.llm else {"llm": None, "backend": None}}

    def process(self, docs: list[Doc]) -> StepResult:
        sources = {str(d["doc_id"]): d.get("text") or "" for d in docs}
        verified: list[Item] = []
        rejected: list[Doc] = []
        if self.config.rule_extraction:
            items = [it for d in docs for it in rule_items(d, self.config)]
            self.extracted["rule"] += len(items)
            verified += self._verify(items, sources, rejected, None)
        if self.llm is not None:
            quota = len(docs) if self.config.max_llm_docs is None else self.config.max_llm_docs - self.llm_docs_seen
            pending = docs[:max(quota, 0)]
            self.llm_docs_seen += len(pending)
            verified += self._extract_with_llm(pending, sources, rejected)
        self.verified_methods.update(i.method for i in verified)
        return StepResult([item_record(i, self.models) for i in verified], rejected)

    def _fail(self, rejected: list[Doc], item: Item, reason: str, detail: str, stage: str = "l4_verify") -> None:
        rejected.append(_rejected(item, item.kind, item.text, item.method, stage, reason, detail, self.models,
                                  item.pointer(), item.verification, item.subject))

    def _verify(self, items: list[Item], sources: dict[str, str], rejected: list[Doc],
                llm: LLM | None) -> list[Item]:
        """Knowledge checks and scorer (free, so before the paid judges), then verification; failures rejected."""
        ok, bad = screen_items(items, self.config.max_item_chars)
        for item, failure in bad:
            self._fail(rejected, item, failure.reason, failure.detail, CHECK_STAGE)
        if self.scorer is not None:
            ok, low = screen_with_scorer(ok, *self.scorer, self.config.min_knowledge_score)
            for item, reason, detail in low:
                self._fail(rejected, item, reason, detail, CHECK_STAGE)
        good, failed = verify_items(ok, sources, llm, self.config, self.budget if llm else None, self.priors,
                                    self.cache if llm else None)
        for item, reason, detail in failed:
            self._fail(rejected, item, reason, detail)
        if self.judge_llm is None or not good:
            return good
        good, failed = judge_knowledge(good, self.judge_llm, self.config.min_knowledge, self.budget, self.cache)
        for item, reason, detail in failed:
            self._fail(rejected, item, reason, detail, CHECK_STAGE if reason == NOT_KNOWLEDGE else "l4_verify")
        return good

    def _extract_with_llm(self, pending: list[Doc], sources: dict[str, str], rejected: list[Doc]) -> list[Item]:
        config, llm, budget = self.config, self.llm, self.budget
        assert llm is not None
        verified: list[Item] = []
        planned = len(pending)
        judge_hold = config.judge_reserve_tokens if config.judge else 0
        while pending and not self.exhausted:
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
                    self.exhausted = True
                    break
                pending.pop(0)
                batch.append((doc, span, prompt, n_in + max_new, max_new))
            if not batch:
                break
            requests = [Request(str(b[0]["doc_id"]), "l4:extract", b[2]) for b in batch]
            gens = llm_cache.generate(llm, self.cache, requests, EXTRACT_PROMPT_VERSION,
                                      max_new_tokens=min(b[4] for b in batch), temperature=config.temperature,
                                      no_repeat_ngram=config.no_repeat_ngram)
            self.calls += len(batch)
            claimed: list[Item] = []
            for (doc, span, _, hold, _), gen in zip(batch, gens, strict=True):
                budget.settle(hold, gen.tokens_in + gen.tokens_out, "extract")
                budget.settle(judge_hold, 0, "judge")  # verify_items reserves the exact judge cost
                claims, reason = parse_extraction(gen.text, gen.finish_reason)
                reason = refusal_reason(gen) or reason  # the prompt guard refused the source text
                if reason:
                    self.extracted["llm_failed_outputs"] += 1
                    rejected.append(_rejected(doc, "extraction", gen.text, "llm", "l4_extract", reason,
                                              f"finish_reason={gen.finish_reason}, tokens_out={gen.tokens_out}",
                                              self.models))
                    continue
                self.extracted["llm"] += len(claims)
                items, failures = anchor_claims(doc, span, claims, config)
                claimed += items
                for kind, text, why, detail in failures:
                    rejected.append(_rejected(doc, kind, text, "llm", "l4_extract", why, detail, self.models))
            verified += self._verify(claimed, sources, rejected, llm)
            if self.progress:
                elapsed = max(time.perf_counter() - self.started, 1e-9)
                done = planned - len(pending)
                self.progress(f"L4: {done}/{planned} documents of this batch through the LLM ({self.calls} calls), "
                              f"{budget.spent}/{budget.limit} tokens, ETA {len(pending) * elapsed / max(done, 1):.0f}s "
                              "(or sooner if the budget runs out)"
                              + (f"; LLM requests: {self.cache.summary()}" if self.cache else ""))
        return verified


class RankSources(PartitionStep):
    """Source documents best first (score, then doc id): the order the LLM budget is spent in."""

    name = "l4_rank"

    def run(self, docs: list[Doc]) -> StepResult:
        return StepResult(rank_by_score(docs), [])


class OrganizeItems(PartitionStep):
    """Merges duplicate items of the partition, tags topics, then links and resolves conflicting items
    (``consistency.py``; needs every item at once). With ``conflict_judge`` the LLM is paid from ``budget``."""

    name = "l4_organize"
    resources = Resources(cpus=1.0, memory_gb=2.0, models=("embedder",))

    def __init__(self, config: L4Settings, budget: TokenBudget | None = None, cache: LLMCache | None = None):
        self.config, self.budget, self.cache = config, budget, cache
        self.stats: dict[str, Any] = {}
        self.consistency: dict[str, Any] = {}

    def setup(self, models: Models) -> None:
        self.embedder: Embedder = models.require("embedder", self.name)
        self.llm: LLM | None = models.llm if self.config.conflict_judge else None

    def run(self, docs: list[Doc]) -> StepResult:
        merged, self.stats = organize(docs, self.embedder, self.config)
        vectors = self.embedder.encode([r["text"] for r in merged]) if self.llm is not None and merged else None
        kept, rejected, self.consistency = check_consistency(
            merged, self.llm, vectors, self.config.conflict_neighbour, self.config.min_contradiction, self.cache,
            self.budget)
        return StepResult(kept, rejected)


def l4_stages(config: L4Settings, cache: LLMCache | None = None,
              progress: Callable[[str], None] | None = None) -> list[RecordStage | PartitionStep]:
    """L4 as a list of stages: rank the sources, extract and verify per document, organize the partition."""
    extract = ExtractItems(config, cache, progress)
    return [RankSources(), extract, OrganizeItems(config, extract.budget, cache)]


@dataclass
class L4Stats:
    """One L4 partition: sources in, items extracted / verified / kept / rejected, budget, merge, timings."""

    docs_in: int
    llm_calls: int
    extracted: dict[str, int]
    verified: int
    verified_by_method: dict[str, int]
    kept: int
    rejected: int
    reasons: dict[str, int]
    items_per_doc: float
    budget_tokens: int
    spent_tokens: int
    spent_by_kind: dict[str, int]
    budget_exhausted: bool
    items_in: int
    records_out: int
    merged: int
    support: dict[str, int]
    topics: dict[str, int]
    consistency: dict[str, Any]
    seconds: float
    prompt_version: str
    llm_cache: dict[str, Any] | None
    stages: dict[str, StageStats]


def build_l4_partition(source_docs: Sequence[Doc], llm: LLM | None, embedder: Embedder,
                       config: L4Settings | None = None,
                       progress: Callable[[str], None] | None = None,
                       cache: LLMCache | None = None) -> tuple[list[Doc], list[Doc], L4Stats]:
    """L4 records of one partition from its L2 and L3 documents: (kept, rejected, stats).

    ``llm`` may be None (rule extraction only). With a ``cache``, extractions and
    judgements already paid for are read back (and charged to the budget alike).
    """
    config = config or L4Settings()
    started = time.perf_counter()
    stages = l4_stages(config, cache, progress)
    extract, organizer = stages[1], stages[2]
    assert isinstance(extract, ExtractItems) and isinstance(organizer, OrganizeItems)
    pipeline = Pipeline(stages, config.records_per_batch)
    result = pipeline.run(source_docs, progress, Models(llm=llm, embedder=embedder))
    n_docs = len(source_docs)
    stats = L4Stats(
        docs_in=n_docs, llm_calls=extract.calls, extracted=dict(extract.extracted),
        verified=sum(extract.verified_methods.values()), verified_by_method=dict(extract.verified_methods),
        kept=len(result.kept), rejected=len(result.rejected),
        reasons=dict(Counter(r["reason"] for r in result.rejected)),
        items_per_doc=round(len(result.kept) / n_docs, 4) if n_docs else 0.0,
        **extract.budget.report(), budget_exhausted=extract.exhausted,  # type: ignore[arg-type]
        items_in=organizer.stats.get("items_in", 0), records_out=organizer.stats.get("records_out", 0),
        merged=organizer.stats.get("merged", 0), support=organizer.stats.get("support", {}),
        topics=organizer.stats.get("topics", {}), consistency=organizer.consistency, seconds=round(time.perf_counter() - started, 3),
        prompt_version=EXTRACT_PROMPT_VERSION, llm_cache=cache.report() if cache else None, stages=pipeline.stats,
    )
    return result.kept, result.rejected, stats
