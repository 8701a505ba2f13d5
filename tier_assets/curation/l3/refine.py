"""L3 refinement of one partition: the best L2 documents, rewritten and synthesized under a token budget.

Documents are taken best-first (L2 score, then doc id), so a budget that runs
out cuts the weakest documents. Each document yields one output per format of
its domain; the variant (style, level, difficulty) rotates by a hash of the
document id, so a partition covers every variant without multiplying the cost.
Every output is parsed and verified against the excerpt the model saw; the
failures go to the rejected set with the raw output, so kept + rejected = outputs
attempted. L2 documents that are not refined stay in L2 (nothing is lost) and
are counted in the stats by reason.
"""

from __future__ import annotations

import ast
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tier_assets.curation import llm_cache
from tier_assets.curation.l3.budget import TokenBudget, prompt_tokens
from tier_assets.curation.l3.parse import Failure, Parsed, parse_output
from tier_assets.curation.l3.prompts import (
    FORMATS,
    PROMPT_VERSION,
    build_prompt,
    code_language,
    instructions,
)
from tier_assets.curation.l3.settings import L3Settings
from tier_assets.curation.l3.verify import (
    NULL_CLAIM,
    check_rules,
    code_changes,
    judge_cost,
    judge_pairs,
    judge_prompt,
    similarities,
)
from tier_assets.curation.llm_cache import LLMCache, Request
from tier_assets.curation.models.embedder import Embedder
from tier_assets.curation.models.llm import LLM, Generation, refusal_reason
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
from tier_assets.curation.schema import derive_doc_id, loads, stable_id

STAGE = "l3"
JUDGE_MARGIN = 16  # tokens: a claim re-tokenized inside the judge prompt may differ slightly from the output
PROVENANCE = ("source", "source_file", "record_index", "byte_offset", "source_doc_id", "warc_record_id", "url",
              "crawl_date")


# ---------------------------------------------------------------------------------------------- excerpts

_SENTENCE_END = re.compile(r"[.!?。！？](?=\s|$)|[。！？]")


def _cut(text: str, start: int, max_chars: int) -> int:
    """End of a window from ``start``: the last paragraph, sentence or word boundary in its second half."""
    end = start + max_chars
    if end >= len(text):
        return len(text)
    window = text[start:end]
    half = max_chars // 2
    para = window.rfind("\n\n")
    if para >= half:
        return start + para
    ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.end() >= half]
    if ends:
        return start + ends[-1]
    space = window.rfind(" ")
    return start + (space if space >= half else max_chars)


def _python_span(text: str, max_chars: int) -> tuple[int, int] | None:
    """Consecutive top-level functions / classes from the first one, up to ``max_chars``."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    for i, node in enumerate(defs):
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        start = offsets[first - 1]
        end = offsets[node.end_lineno]
        if end - start > max_chars:
            continue
        for nxt in defs[i + 1:]:
            nxt_end = offsets[nxt.end_lineno]
            if nxt_end - start > max_chars:
                break
            end = nxt_end
        return start, end
    return None


def source_span(text: str, domain: str, language: str, max_chars: int) -> tuple[int, int]:
    """The [start, end) excerpt of an L2 text that the model is shown.

    Prose: from the start (after a LaTeX preamble) to a paragraph or sentence
    boundary. Python: whole top-level functions or classes, so a documented
    rewrite can be compared by AST. Other code: whole lines.
    """
    if domain == "code":
        if language == "python":
            span = _python_span(text, max_chars)
            if span:
                return span
        end = text.rfind("\n", 0, max_chars + 1) if len(text) > max_chars else len(text)
        return 0, end if end > 0 else min(len(text), max_chars)
    start = 0
    doc_start = text.find("\\begin{document}")
    if doc_start >= 0:
        start = doc_start + len("\\begin{document}")
    while start < len(text) and text[start].isspace():
        start += 1
    return start, _cut(text, start, max_chars)


# ---------------------------------------------------------------------------------------------- jobs


@dataclass
class _Job:
    doc: Doc
    fmt: str
    variant: str
    span: tuple[int, int]
    excerpt: str
    language: str
    prompt: list[dict[str, str]]
    gen_in: int = 0
    max_new: int = 0
    gen_hold: int = 0
    judge_hold: int = 0
    generation: Generation | None = None
    verification: dict[str, Any] = field(default_factory=dict)


def variant_for(doc_id: str, fmt: str) -> str:
    """The style / level / difficulty a document gets for ``fmt``: rotates by a hash of its id."""
    variants = FORMATS[fmt].variants
    return variants[int(stable_id(doc_id, fmt), 16) % len(variants)]


def rank_by_score(docs: Sequence[Doc]) -> list[Doc]:
    """Best first: L2 score descending (missing scores last), then doc id, so the order is reproducible."""
    def key(d: Doc) -> tuple[float, str]:
        s = d.get("score")
        return (-(s if isinstance(s, int | float) and not math.isnan(s) else -math.inf), str(d["doc_id"]))
    return sorted(docs, key=key)


def _models(doc: Doc) -> dict[str, Any]:
    """The source document's ``models`` (one object per tier that made it), to which L3 adds its own."""
    models = doc.get("models")
    return dict(models) if isinstance(models, dict) else loads(models) or {}


def _base_record(job: _Job, text: str, llm: LLM, embedder: Embedder) -> Doc:
    doc = job.doc
    gen = job.generation
    parent = str(doc["doc_id"])
    rec: Doc = {
        "doc_id": derive_doc_id("L3", [parent], variant=f"{job.fmt}:{job.variant}"),
        "parent_ids": [parent], "tier": "L3", "domain": doc["domain"], "batch": doc["batch"], "text": text,
        "title": doc.get("title"), "lang": doc.get("lang"), "score": doc.get("score"), "meta": doc.get("meta"),
        "signals": {STAGE: {
            "format": job.fmt, "variant": job.variant, "prompt_version": PROMPT_VERSION,
            "tokens_in": gen.tokens_in if gen else 0, "tokens_out": gen.tokens_out if gen else 0,
            "finish_reason": gen.finish_reason if gen else None, "source_span": list(job.span),
            "verification": job.verification,
        }},
        "models": {**_models(doc), "l3": {"llm": llm.model_id, "backend": llm.backend, "embedder": embedder.version}},
    }
    for name in PROVENANCE:
        rec[name] = doc.get(name)
    return rec


class RankForRefinement(PartitionStep):
    """Best first (L2 score, then doc id), and only the documents worth a paid call.

    A partition step: ``max_docs`` and the order the budget is spent in are
    properties of the whole partition. Documents left out are not rejected (they
    stay in L2); ``not_refined`` counts them by reason.
    """

    name = "l3_rank"

    def __init__(self, config: L3Settings):
        self.config = config
        self.not_refined = Counter[str]()

    def run(self, docs: list[Doc]) -> StepResult:
        config, taken, chosen = self.config, 0, []
        for doc in rank_by_score(docs):
            score = doc.get("score")
            if config.min_score is not None and (score is None or score < config.min_score):
                self.not_refined["below_min_score"] += 1
                continue
            if config.max_docs is not None and taken >= config.max_docs:
                self.not_refined["max_docs"] += 1
                continue
            if len(_excerpt(doc, config)[1].strip()) < config.min_source_chars:
                self.not_refined["too_short"] += 1
                continue
            taken += 1
            chosen.append(doc)
        return StepResult(chosen, [])


def _excerpt(doc: Doc, config: L3Settings) -> tuple[tuple[int, int], str, str]:
    """(span, excerpt, code language) of the part of ``doc`` the model sees."""
    text = doc.get("text") or ""
    language = code_language(doc.get("meta"))
    span = source_span(text, doc["domain"], language, config.max_source_chars)
    return span, text[span[0]:span[1]], language


class Refine(RecordStage):
    """Each document's outputs (one per format), generated and verified, paid from the partition's budget.

    The token budget belongs to the stage and carries across batches, so the
    documents are refined in the order they arrive (``RankForRefinement``'s) until
    it runs out; the documents after that count as ``not_refined["budget"]``. Given
    the same LLM answers (the cache) and a budget that does not bind, the result does
    not depend on where batches are cut. Generation happens ``config.batch_size``
    prompts at a time.
    """

    name = "l3_refine"
    resources = Resources(cpus=1.0, gpus=0.0, memory_gb=4.0, models=("llm", "embedder"))

    def __init__(self, config: L3Settings, cache: LLMCache | None = None,
                 progress: Callable[[str], None] | None = None):
        self.config, self.cache, self.progress = config, cache, progress
        self.budget = TokenBudget(config.budget_tokens)
        self.kept: list[Doc] = []
        self.rejected: list[Doc] = []
        self.priors: dict[str, float] = {}
        self.per_format: dict[str, Counter[str]] = {}
        self.seconds = Counter[str]()
        self.not_refined = Counter[str]()
        self.attempted_docs: set[str] = set()
        self.exhausted = False
        self.jobs_done = 0
        self.started = time.perf_counter()

    def setup(self, models: Models) -> None:
        self.llm: LLM = models.require("llm", self.name)
        self.embedder: Embedder = models.require("embedder", self.name)

    def process(self, docs: list[Doc]) -> StepResult:
        n_kept, n_rejected = len(self.kept), len(self.rejected)
        jobs: list[_Job] = []
        for doc in docs:
            span, excerpt, language = _excerpt(doc, self.config)
            for fmt in self.config.formats_for(doc["domain"]):
                variant = variant_for(str(doc["doc_id"]), fmt)
                prompt = build_prompt(fmt, variant, doc["domain"], excerpt, language)
                jobs.append(_Job(doc, fmt, variant, span, excerpt, language, prompt))
        i = 0
        while i < len(jobs) and not self.exhausted:
            batch: list[_Job] = []
            while i < len(jobs) and len(batch) < self.config.batch_size:
                if not self.plan(jobs[i]):
                    self.exhausted = True
                    break
                batch.append(jobs[i])
                i += 1
            if batch:
                self.run_batch(batch)
                self.attempted_docs.update(str(j.doc["doc_id"]) for j in batch)
                self.jobs_done += len(batch)
                self._report(len(jobs) - i)
        if self.exhausted:
            self.not_refined["budget"] += len({str(j.doc["doc_id"]) for j in jobs[i:]} - self.attempted_docs)
        return StepResult(self.kept[n_kept:], self.rejected[n_rejected:])

    def _report(self, left: int) -> None:
        if not self.progress:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        done = self.jobs_done
        self.progress(f"L3: {done} outputs, {len(self.kept)} kept, {self.budget.spent}/{self.budget.limit} tokens, "
                      f"{60 * done / elapsed:.1f} outputs/min, ETA {left * elapsed / done:.0f}s for this batch "
                      "(or sooner if the budget runs out)"
                      + (f"; LLM requests: {self.cache.summary()}" if self.cache else ""))

    def count(self, fmt: str, outcome: str) -> None:
        self.per_format.setdefault(fmt, Counter())[outcome] += 1

    def fail(self, job: _Job, stage: str, reason: str, detail: str) -> None:
        raw = job.generation.text if job.generation else ""
        rec = _base_record(job, raw, self.llm, self.embedder)
        self.rejected.append(reject(rec, stage, reason, detail))
        self.count(job.fmt, reason)
        if job.judge_hold:
            self.budget.settle(job.judge_hold, 0, "judge")
            job.judge_hold = 0

    def plan(self, job: _Job) -> bool:
        """Reserve the job's worst case; False when even ``min_new_tokens`` no longer fits."""
        cfg = self.config
        job.gen_in = prompt_tokens(self.llm, job.prompt)
        judge_base = 0
        if cfg.judge:
            judge_base = judge_cost(self.llm, judge_prompt(job.excerpt, "")) + JUDGE_MARGIN
            if cfg.judge_calibrated and job.excerpt not in self.priors:
                judge_base += judge_cost(self.llm, judge_prompt(job.excerpt, NULL_CLAIM))
        room = self.budget.available - job.gen_in - judge_base
        max_new = min(cfg.max_new_tokens, room // 2 if cfg.judge else room)
        if max_new < cfg.min_new_tokens:
            return False
        job.max_new = max_new
        job.gen_hold = job.gen_in + max_new
        job.judge_hold = judge_base + max_new if cfg.judge else 0
        return self.budget.reserve(job.gen_hold + job.judge_hold)

    def run_batch(self, jobs: list[_Job]) -> None:
        cfg = self.config
        start = time.perf_counter()
        guard = [0 if j.fmt == "code_document" else cfg.no_repeat_ngram for j in jobs]
        by_job: dict[int, Generation] = {}
        for n in sorted(set(guard)):  # one generate call per guard setting
            idx = [k for k, g in enumerate(guard) if g == n]
            requests = [Request(str(jobs[k].doc["doc_id"]), f"l3:{jobs[k].fmt}:{jobs[k].variant}", jobs[k].prompt)
                        for k in idx]
            out = llm_cache.generate(self.llm, self.cache, requests, PROMPT_VERSION,
                                     max_new_tokens=min(jobs[k].max_new for k in idx),
                                     temperature=cfg.temperature, no_repeat_ngram=n)
            by_job.update(zip(idx, out, strict=True))
        gens = [by_job[k] for k in range(len(jobs))]
        self.seconds["generate"] += time.perf_counter() - start
        survivors: list[tuple[_Job, Parsed]] = []
        for job, gen in zip(jobs, gens, strict=True):
            job.generation = gen
            self.budget.settle(job.gen_hold, gen.tokens_in + gen.tokens_out, "generate")
            self.count(job.fmt, "attempted")
            refused = refusal_reason(gen)
            if refused:  # the LLM prompt guard found L1 content terms in the prompt
                self.fail(job, "l3_safety", refused, "prompt refused by the LLM prompt guard")
                continue
            parsed = parse_output(job.fmt, job.variant, job.doc["domain"], gen.text, gen.finish_reason,
                                  job.excerpt, instructions(job.prompt), cfg.copy_threshold)
            if isinstance(parsed, Failure):
                self.fail(job, "l3_parse", parsed.reason, parsed.detail)
                continue
            job.verification["rules"] = list(FORMATS[job.fmt].rules)
            verdict = (code_changes(job.excerpt, parsed.fields["code"], job.language)
                       if job.fmt == "code_document" else check_rules(FORMATS[job.fmt].rules, parsed.claims,
                                                                      job.excerpt))
            if verdict:
                self.fail(job, "l3_verify", *verdict)
                continue
            survivors.append((job, parsed))
        sims = similarities(self.embedder, [p.claims for _, p in survivors], [j.excerpt for j, _ in survivors])
        judged: list[tuple[_Job, Parsed]] = []
        for (job, parsed), sim in zip(survivors, sims, strict=True):
            threshold = cfg.min_similarity[job.fmt]
            job.verification.update(similarity=round(float(sim), 4), min_similarity=threshold)
            if sim < threshold:
                self.fail(job, "l3_verify", "low_similarity", f"cosine {sim:.3f} < {threshold}")
            else:
                judged.append((job, parsed))
        if cfg.judge and judged:
            for job, _ in judged:  # release the holds: judge_pairs reserves the exact cost
                self.budget.settle(job.judge_hold, 0, "judge")
                job.judge_hold = 0
            start = time.perf_counter()
            probs = judge_pairs(self.llm, [(j.excerpt, p.claims) for j, p in judged], self.budget,
                                cfg.judge_calibrated, priors=self.priors, cache=self.cache,
                                doc_ids=[str(j.doc["doc_id"]) for j, _ in judged], task="l3:judge")
            self.seconds["judge"] += time.perf_counter() - start
        else:
            probs = [None] * len(judged)
        for (job, parsed), p in zip(judged, probs, strict=True):
            if cfg.judge:
                job.verification.update(faithfulness=None if p is None else round(p, 4),
                                        min_faithfulness=cfg.min_faithfulness, calibrated=cfg.judge_calibrated)
                if p is None:
                    self.fail(job, "l3_budget", "budget_exhausted", "no budget left for the faithfulness judge")
                    continue
                if math.isnan(p):
                    self.fail(job, "l3_verify", "judge_unavailable", "the backend returned no Yes/No log-probs")
                    continue
                if p < cfg.min_faithfulness:
                    self.fail(job, "l3_verify", "unfaithful", f"judge P(Yes) {p:.3f} < {cfg.min_faithfulness}")
                    continue
            rec = _base_record(job, parsed.text, self.llm, self.embedder)
            rec["signals"][STAGE]["fields"] = parsed.fields
            self.kept.append(rec)
            self.count(job.fmt, "kept")


@dataclass
class L3Stats:
    """One L3 run: documents in / refined / not refined (by reason), outputs, the budget, timings."""

    docs_in: int
    docs_refined: int
    docs_not_refined: dict[str, int]
    outputs: int
    kept: int
    rejected: int
    reasons: dict[str, int]
    per_format: dict[str, dict[str, int]]
    budget_tokens: int
    spent_tokens: int
    spent_by_kind: dict[str, int]
    budget_exhausted: bool
    tokens_out: int
    seconds: dict[str, float]
    llm: dict[str, Any]
    embedder: str
    prompt_version: str
    llm_cache: dict[str, Any] | None
    stages: dict[str, StageStats]


def l3_stages(config: L3Settings, cache: LLMCache | None = None,
              progress: Callable[[str], None] | None = None) -> list[RecordStage | PartitionStep]:
    """L3 as a list of stages: rank the partition, then refine document by document under the budget."""
    return [RankForRefinement(config), Refine(config, cache, progress)]


def refine_partition(l2_docs: Sequence[Doc], llm: LLM, embedder: Embedder, config: L3Settings | None = None,
                     progress: Callable[[str], None] | None = None,
                     cache: LLMCache | None = None) -> tuple[list[Doc], list[Doc], L3Stats]:
    """Refine one L2 partition into L3: (kept records, rejected records, stats).

    With a ``cache``, answers already paid for are read back (and charged to the
    budget like the paid call, so the output is the same).
    """
    config = config or L3Settings()
    started = time.perf_counter()
    rank, refine = stages = l3_stages(config, cache, progress)
    assert isinstance(rank, RankForRefinement) and isinstance(refine, Refine)
    pipeline = Pipeline(stages, config.records_per_batch)
    result = pipeline.run(l2_docs, progress, Models(llm=llm, embedder=embedder))
    records = result.kept + result.rejected
    stats = L3Stats(
        docs_in=len(l2_docs), docs_refined=len(refine.attempted_docs),
        docs_not_refined=dict(rank.not_refined + refine.not_refined),
        outputs=len(records), kept=len(result.kept), rejected=len(result.rejected),
        reasons=dict(Counter(r["reason"] for r in result.rejected)),
        per_format={f: dict(c) for f, c in sorted(refine.per_format.items())},
        **refine.budget.report(), budget_exhausted=refine.exhausted,  # type: ignore[arg-type]
        tokens_out=sum(r["signals"][STAGE]["tokens_out"] for r in records),
        seconds={"total": round(time.perf_counter() - started, 3),
                 **{k: round(v, 3) for k, v in refine.seconds.items()}},
        llm=llm.info, embedder=embedder.version, prompt_version=PROMPT_VERSION,
        llm_cache=cache.report() if cache else None, stages=pipeline.stats,
    )
    return result.kept, result.rejected, stats
