"""Training-stage exports: sample tiers x domains to a token budget, write shards and a manifest.

Each tier feeds a different training stage (the paper's mapping): pre-training
from L1 + L2, mid-training / decay from the top of L2 + L3, SFT from L3 Q&A and
dialogues + L4 items, RAG from the L4 index. A :class:`StageSpec` says how many
tokens a stage gets and how they split over tiers and domains; :func:`export_stage`
turns it into training-ready shards plus a manifest that says what was asked for,
what was delivered (and what was short), a content hash per shard and every model
and recipe version that made the data.

How it stays deterministic and bounded in memory:

* Selection happens in DuckDB over the tier views with small columns only
  (``doc_id``, ``domain``, ``n_chars``): each tier x domain cell is ordered by
  ``md5(seed, epoch, doc_id)`` and walked in that order, keeping every document
  that still fits the cell's budget and skipping one that does not, so a cell
  comes in short only by less than its smallest unused document. The walk is the
  longest fitting prefix (a window sum, in DuckDB) and then a pass over the rest
  of that epoch for documents no larger than what is left: the bulk is an
  unbiased prefix of a seeded permutation, and only the last, under one
  document's worth of tokens leans to small documents. When a cell runs out,
  further epochs (re-shuffled) repeat it up to the tier's repetition cap; a
  document is never repeated while another of its cell was left out.
* Texts are then streamed from Parquet in a seeded global order, in record
  batches, straight into shards written to a temp file and renamed into place. md5,
  JSON, zstd and Parquet output are all deterministic, so the same data + spec +
  seed give byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from tier_assets.curation.atomic import publish, temp_sibling, write_text_atomic
from tier_assets.curation.catalog import connect
from tier_assets.curation.schema import HAN, TIERS, loads
from tier_assets.curation.storage import TierStore

# Same chars-per-token ratios as sql/tier_summary.sql, so exports and stats agree.
CHARS_PER_TOKEN = {"zh": 1.5, "code": 3.2, "math": 3.5}
DEFAULT_CHARS_PER_TOKEN = 4.0

OUTPUT_FORMATS = ("jsonl.zst", "parquet")
# text: {"text", "doc_id", "tier", "domain"}; chat: {"messages", ...}; item: an L4 item for RAG
RECORD_FORMATS = ("text", "chat", "item")
STAGES = ("pretrain", "decay", "sft", "rag")
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
ZSTD_LEVEL = 10
PARQUET_ROW_GROUP = 1000
STREAM_BATCH_ROWS = 1000


@dataclass(frozen=True)
class StageSpec:
    """What one training stage gets: budget, tier x domain weights, repetition caps, format.

    ``token_budget=None`` exports every matching record once (weights and caps are
    then moot): that is what RAG wants, the whole index. Empty ``domain_weights``
    means natural proportions (each domain's share of the tier's available tokens);
    given weights restrict the export to those domains. ``max_repetitions`` caps how
    often a record of a tier may appear (missing tier: 1, no repetition).
    """

    name: str
    tier_weights: Mapping[str, float]
    token_budget: int | None = None
    domain_weights: Mapping[str, float] = field(default_factory=dict)
    max_repetitions: Mapping[str, int] = field(default_factory=dict)
    seed: int = 0
    l3_formats: tuple[str, ...] = ()  # only these L3 formats (signals.l3.format); empty: all
    l2_top_fraction: float | None = None  # only the highest-scored fraction of L2, per domain
    record_format: str = "text"
    output_format: str = "jsonl.zst"
    shard_max_docs: int = 10_000
    index_path: str | None = None  # RAG: the vector index the items belong to, relative to the data root

    def __post_init__(self) -> None:
        if not self.name or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"stage name must be a plain file-name part, got {self.name!r}")
        unknown = set(self.tier_weights) - set(TIERS)
        if unknown:
            raise ValueError(f"unknown tiers in tier_weights: {sorted(unknown)}")
        weights = [*self.tier_weights.values(), *self.domain_weights.values()]
        if any(w < 0 for w in weights) or not sum(w for w in self.tier_weights.values()) > 0:
            raise ValueError("weights must be >= 0 and at least one tier weight > 0")
        if self.domain_weights and not sum(self.domain_weights.values()) > 0:
            raise ValueError("domain_weights, when given, need at least one weight > 0")
        if any(r < 1 for r in self.max_repetitions.values()):
            raise ValueError("max_repetitions must be >= 1 (1 = no repetition)")
        if self.token_budget is not None and self.token_budget < 0:
            raise ValueError("token_budget must be >= 0 or None")
        if self.l2_top_fraction is not None and not 0 < self.l2_top_fraction <= 1:
            raise ValueError("l2_top_fraction must be in (0, 1]")
        if self.record_format not in RECORD_FORMATS:
            raise ValueError(f"record_format must be one of {RECORD_FORMATS}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}")
        if self.shard_max_docs < 1:
            raise ValueError("shard_max_docs must be >= 1")

    @property
    def tiers(self) -> list[str]:
        return [t for t in TIERS if self.tier_weights.get(t, 0) > 0]

    def repetitions(self, tier: str) -> int:
        return 1 if self.token_budget is None else self.max_repetitions.get(tier, 1)


# Budgets sized for the bundled demo corpus; real runs configure billions.
DEFAULT_TOKEN_BUDGETS: dict[str, int | None] = {
    "pretrain": 1_000_000,
    "decay": 200_000,
    "sft": 50_000,
    "rag": None,
}


def default_spec(stage: str, token_budget: int | None = None, seed: int = 0) -> StageSpec:
    """The paper's tier -> stage mapping as a spec; ``token_budget`` None keeps the stage default.

    The scarce upper tiers may repeat (2 epochs): repeating high-quality data a few
    times costs little against unique data (Muennighoff et al. 2023), while the
    bulk tier never repeats.
    """
    budget = DEFAULT_TOKEN_BUDGETS[stage] if token_budget is None else token_budget
    if stage == "pretrain":
        return StageSpec("pretrain", {"L1": 0.4, "L2": 0.6}, budget, max_repetitions={"L2": 2}, seed=seed)
    if stage == "decay":
        return StageSpec(
            "decay", {"L2": 0.5, "L3": 0.5}, budget, max_repetitions={"L3": 2}, seed=seed, l2_top_fraction=0.3
        )
    if stage == "sft":
        return StageSpec(
            "sft",
            {"L3": 0.7, "L4": 0.3},
            budget,
            seed=seed,
            l3_formats=("qa", "dialogue"),
            record_format="chat",
        )
    if stage == "rag":
        return StageSpec("rag", {"L4": 1.0}, budget, seed=seed, record_format="item", index_path="index/l4")
    raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")


def estimate_tokens(n_chars: int, domain: str) -> int:
    """Tokens of a document, rounded up so a budget is never exceeded by the estimate."""
    return math.ceil(n_chars / CHARS_PER_TOKEN.get(domain, DEFAULT_CHARS_PER_TOKEN))


@dataclass(frozen=True)
class ShardInfo:
    path: str  # file name, relative to the manifest's directory
    docs: int
    tokens: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    """What an export delivered against what its spec asked for; written as ``manifest.json``."""

    stage: str
    path: Path
    data_root: str
    spec: dict[str, Any]
    token_budget: int | None
    requested_tokens: int
    delivered_tokens: int
    delivered_docs: int
    short: bool
    shortfalls: list[str]
    tiers: dict[str, dict[str, Any]]
    domains: dict[str, dict[str, Any]]
    cells: list[dict[str, Any]]
    shards: list[ShardInfo]
    versions: dict[str, list[str]]
    skipped: dict[str, int]
    selection_sha256: str
    index: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return {"manifest_version": MANIFEST_VERSION, **out}


# ---------------------------------------------------------------- selection (DuckDB)


def _tokens_sql() -> str:
    cases = " ".join(f"WHEN '{d}' THEN {r}" for d, r in CHARS_PER_TOKEN.items())
    return (
        f"CAST(ceil(coalesce(n_chars, 0) / CASE domain {cases} ELSE {DEFAULT_CHARS_PER_TOKEN} END) AS BIGINT)"
    )


def _candidates_sql(spec: StageSpec, tier: str) -> str:
    """Doc ids, domains and token estimates of one tier's records eligible for the stage."""
    view = tier.lower()
    where = ["true"]
    if spec.domain_weights:
        where.append("list_contains($domains, domain)")
    if tier == "L1" and "L2" in spec.tiers:
        # L2 is the selected part of L1: count those documents once, as L2.
        where.append("doc_id NOT IN (SELECT doc_id FROM l2 UNION ALL SELECT unnest(parent_ids) FROM l2)")
    if tier == "L3" and spec.l3_formats:
        where.append("list_contains($l3_formats, json_extract_string(signals, '$.l3.format'))")
    qualify = ""
    if tier == "L2" and spec.l2_top_fraction is not None:
        where.append("score IS NOT NULL")
        qualify = (
            "QUALIFY row_number() OVER (PARTITION BY domain ORDER BY score DESC, doc_id)"
            " <= ceil($top_fraction * count(*) OVER (PARTITION BY domain))"
        )
    return (
        f"SELECT doc_id, '{tier}' AS tier, domain, batch, {_tokens_sql()} AS tokens FROM {view} "
        f"WHERE {' AND '.join(where)} {qualify}"
    )


def _bound(spec: StageSpec, sql: str) -> dict[str, Any]:
    """The spec's values for the ``$name`` parameters that ``sql`` uses (DuckDB rejects unused ones)."""
    values = {
        "seed": str(spec.seed),
        "domains": sorted(d for d, w in spec.domain_weights.items() if w > 0),
        "l3_formats": list(spec.l3_formats),
        "top_fraction": spec.l2_top_fraction,
    }
    return {k: values[k] for k in set(re.findall(r"\$([a-z_0-9]+)", sql)) & set(values)}


def allocate(
    spec: StageSpec, available: Mapping[tuple[str, str], int]
) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Requested tokens per tier and per (tier, domain) cell, floored so they sum to <= the budget."""
    tier_req: dict[str, int] = {}
    cell_req: dict[tuple[str, str], int] = {}
    if spec.token_budget is None:
        for (tier, domain), tokens in available.items():
            cell_req[(tier, domain)] = tokens
            tier_req[tier] = tier_req.get(tier, 0) + tokens
        return {t: tier_req.get(t, 0) for t in spec.tiers}, cell_req
    total_w = sum(spec.tier_weights[t] for t in spec.tiers)
    for tier in spec.tiers:
        share = spec.token_budget * spec.tier_weights[tier] / total_w
        tier_req[tier] = math.floor(share)
        if spec.domain_weights:
            dw = {d: w for d, w in spec.domain_weights.items() if w > 0}
        else:
            dw = {d: tok for (t, d), tok in available.items() if t == tier and tok > 0}
        total_d = sum(dw.values())
        for domain in sorted(dw):
            cell_req[(tier, domain)] = math.floor(share * dw[domain] / total_d)
    return tier_req, cell_req


def _select(
    con: duckdb.DuckDBPyConnection, spec: StageSpec
) -> tuple[dict[tuple[str, str], tuple[int, int]], dict[tuple[str, str], int], dict[str, int]]:
    """Create temp table ``sel`` (doc_id, tier, domain, batch, tokens, epoch); return availability, requests."""
    cand = " UNION ALL ".join(_candidates_sql(spec, t) for t in spec.tiers)
    con.execute(f"CREATE TEMP TABLE cand AS {cand}", _bound(spec, cand))
    available = {
        (t, d): (int(n), int(tok))
        for t, d, n, tok in con.execute(
            "SELECT tier, domain, count(*), sum(tokens) FROM cand GROUP BY ALL"
        ).fetchall()
    }
    tier_req, cell_req = allocate(spec, {k: v[1] for k, v in available.items()})
    alloc = pa.table(
        {
            "tier": [k[0] for k in cell_req],
            "domain": [k[1] for k in cell_req],
            "requested": pa.array(list(cell_req.values()), pa.int64()),
            "reps": pa.array([spec.repetitions(k[0]) for k in cell_req], pa.int64()),
        }
    )
    con.register("alloc_arrow", alloc)
    con.execute("CREATE TEMP TABLE alloc AS SELECT * FROM alloc_arrow")
    con.unregister("alloc_arrow")
    ranked = """
        CREATE TEMP TABLE ranked AS
        WITH expanded AS (
            SELECT c.doc_id, c.tier, c.domain, c.batch, c.tokens, a.requested, unnest(range(a.reps)) AS epoch
            FROM cand c JOIN alloc a USING (tier, domain)
        )
        SELECT *, row_number() OVER w AS pos, sum(tokens) OVER (w ROWS UNBOUNDED PRECEDING) AS cum
        FROM expanded
        WINDOW w AS (
            PARTITION BY tier, domain
            ORDER BY epoch, md5(concat_ws('/', $seed, 'pick', CAST(epoch AS VARCHAR), doc_id)))
    """
    con.execute(ranked, _bound(spec, ranked))
    con.register("picked_arrow", _fill_after_prefix(con))
    con.execute("""
        CREATE TEMP TABLE sel AS
        SELECT doc_id, tier, domain, batch, tokens, CAST(epoch AS BIGINT) AS epoch FROM ranked WHERE cum <= requested
        UNION ALL
        SELECT doc_id, tier, domain, batch, tokens, CAST(epoch AS BIGINT) AS epoch
        FROM ranked JOIN picked_arrow USING (tier, domain, pos)
    """)
    con.unregister("picked_arrow")
    con.execute("DROP TABLE ranked")
    return available, cell_req, tier_req


_PICKED_SCHEMA = pa.schema([("tier", pa.string()), ("domain", pa.string()), ("pos", pa.int64())])


def _fill_after_prefix(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Positions (tier, domain, pos) in ``ranked`` that fill each cell's budget after its seeded prefix.

    The prefix (``cum <= requested``) ends at the first document that does not fit;
    the walk skips it and goes on in the same order, taking every later document of
    that epoch that still fits in what is left. Later epochs stay out: a document is
    repeated only once every document of its cell was taken.
    """
    tail = con.sql("""
        WITH cut AS (
            SELECT tier, domain, min(pos) AS cut_pos, arg_min(epoch, pos) AS cut_epoch,
                   CAST(arg_min(requested - (cum - tokens), pos) AS BIGINT) AS room
            FROM ranked WHERE cum > requested GROUP BY tier, domain
        )
        SELECT r.tier, r.domain, r.pos, r.tokens, cut.room
        FROM ranked r JOIN cut USING (tier, domain)
        WHERE r.epoch = cut.cut_epoch AND r.pos > cut.cut_pos AND r.tokens <= cut.room
        ORDER BY r.tier, r.domain, r.pos
    """).to_arrow_reader(STREAM_BATCH_ROWS)
    picked: list[dict[str, Any]] = []
    cell, left = None, 0
    for batch in tail:
        for row in batch.to_pylist():
            if (row["tier"], row["domain"]) != cell:
                cell, left = (row["tier"], row["domain"]), row["room"]
            if row["tokens"] <= left:
                left -= row["tokens"]
                picked.append(row)
    return pa.Table.from_pylist(picked, schema=_PICKED_SCHEMA)


def _stream_sql(spec: StageSpec) -> str:
    """Selected records with their texts, in a seeded global order (so shards mix tiers and domains)."""
    parts = [
        f"SELECT s.epoch, s.tokens, doc_id, r.tier, domain, r.text, r.parent_ids, r.signals, r.models, "
        f"md5(concat_ws('/', $seed, 'order', CAST(s.epoch AS VARCHAR), s.tier, s.doc_id)) AS k "
        f"FROM sel s JOIN {t.lower()} r USING (doc_id, domain, batch) WHERE s.tier = '{t}'"
        for t in spec.tiers
    ]
    return f"SELECT * EXCLUDE (k) FROM ({' UNION ALL '.join(parts)}) ORDER BY k"


# ---------------------------------------------------------------- record formats

_QA_TAGS = re.compile(
    r"<(question|problem)>\s*(?P<q>.+?)\s*</\1>.*?<(answer|solution)>\s*(?P<a>.+?)\s*</\3>", re.S | re.I
)
_QA_LABELS = re.compile(
    r"^\s*(?:Q|Question|Problem)\s*[:：]\s*(?P<q>.+?)\n\s*(?:A|Answer|Solution)\s*[:：]\s*(?P<a>.+?)\s*$",
    re.S | re.I,
)
# "Teacher: ...", "**Teacher:** ..." and full-width colons
_TURN = re.compile(r"^\s*\**(?P<speaker>[^:：\n*]{1,40}?)\**\s*[:：]\**\s*(?P<text>.*)$")


def _qa_from_text(text: str) -> list[dict[str, str]] | None:
    m = _QA_TAGS.search(text) or _QA_LABELS.match(text)
    if not m:
        return None
    return [{"role": "user", "content": m["q"].strip()}, {"role": "assistant", "content": m["a"].strip()}]


def _dialogue_from_text(text: str) -> list[dict[str, str]] | None:
    """``Speaker: utterance`` lines -> alternating user / assistant turns.

    The two most frequent speaker labels are the parties (the one speaking first
    is the user); a line with any other label ("Note: ...") continues the turn.
    """
    lines = text.splitlines()
    matches = [_TURN.match(line) for line in lines]
    labels = [m["speaker"].strip() if m else None for m in matches]
    counts = Counter(label for label in labels if label)
    parties = sorted(counts, key=lambda lb: (-counts[lb], labels.index(lb)))[:2]
    if len(parties) < 2:
        return None
    user = min(parties, key=labels.index)
    turns: list[list[str]] = []  # [role, content]
    for line, m, label in zip(lines, matches, labels, strict=True):
        if label in parties:
            role = "user" if label == user else "assistant"
            if turns and turns[-1][0] == role:
                turns[-1][1] += "\n" + m["text"]
            else:
                turns.append([role, m["text"]])
        elif turns:
            turns[-1][1] += "\n" + line
        elif line.strip():
            return None  # text before the first turn: not a dialogue
    while turns and turns[-1][0] == "user":
        turns.pop()
    if len(turns) < 2:
        return None
    return [{"role": role, "content": content.strip()} for role, content in turns]


def definition_messages(term: str, text: str, methods: Sequence[str]) -> list[dict[str, str]]:
    """An L4 definition as a question about its term answered by the verified sentence itself.

    Code definitions come from docstrings ("what does it do"), Chinese terms get a
    Chinese question; the answer is the item's text, which its evidence pointer backs.
    """
    if "rule:docstring" in methods:
        question = f"What does `{term}` do in Python?"
    elif HAN.search(term):
        question = f"什么是{term}？"
    else:
        question = f"What is {term}?"
    return [{"role": "user", "content": question}, {"role": "assistant", "content": text.strip()}]


def chat_messages(tier: str, text: str, signals: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """An L3 / L4 record as chat messages, or None when it holds no question/answer or dialogue.

    Structured fields written by the tier win (``signals[tier].messages`` as
    ``[{role, content}]``, or ``.question`` + ``.answer``; an L4 definition becomes a
    question about its term, :func:`definition_messages`); otherwise the text is
    parsed: ``<question>..</question><answer>..</answer>`` tags, ``Question: / Answer:``
    labels, or ``Speaker: utterance`` dialogue lines.
    """
    sig = signals.get(tier.lower()) or {}
    messages = sig.get("messages")
    if (
        isinstance(messages, list)
        and messages
        and all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and m.get("content")
            for m in messages
        )
    ):
        return [{"role": m["role"], "content": str(m["content"])} for m in messages]
    if sig.get("question") and sig.get("answer"):
        return [
            {"role": "user", "content": str(sig["question"])},
            {"role": "assistant", "content": str(sig["answer"])},
        ]
    if tier == "L4" and sig.get("kind") == "definition" and sig.get("term"):
        return definition_messages(str(sig["term"]), text, sig.get("methods") or ())
    parsers = (
        (_dialogue_from_text, _qa_from_text)
        if sig.get("format") == "dialogue"
        else (_qa_from_text, _dialogue_from_text)
    )
    for parse in parsers:
        found = parse(text)
        if found:
            return found
    return None


_PARQUET_SCHEMAS = {
    "text": pa.schema(
        [("text", pa.string()), ("doc_id", pa.string()), ("tier", pa.string()), ("domain", pa.string())]
    ),
    "chat": pa.schema(
        [
            ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("doc_id", pa.string()),
            ("tier", pa.string()),
            ("domain", pa.string()),
        ]
    ),
    "item": pa.schema(
        [
            ("doc_id", pa.string()),
            ("tier", pa.string()),
            ("domain", pa.string()),
            ("text", pa.string()),
            ("parent_ids", pa.list_(pa.string())),
            ("item", pa.string()),  # the tier's signals (evidence pointers, kind, ...) as JSON
        ]
    ),
}


def _format_record(spec: StageSpec, row: dict[str, Any]) -> dict[str, Any] | None:
    """One output record for the spec's format; None when a chat record cannot be formed."""
    base = {"doc_id": row["doc_id"], "tier": row["tier"], "domain": row["domain"]}
    if spec.record_format == "text":
        return {"text": row["text"], **base}
    signals = loads(row["signals"])
    if spec.record_format == "chat":
        messages = chat_messages(row["tier"], row["text"], signals)
        return {"messages": messages, **base} if messages else None
    item = signals.get(row["tier"].lower()) or {}
    if spec.output_format == "parquet":
        item = json.dumps(item, ensure_ascii=False, sort_keys=True)
    return {**base, "text": row["text"], "parent_ids": list(row["parent_ids"] or []), "item": item}


# ---------------------------------------------------------------- shards


class _ShardWriter:
    """One shard: a temp file in the output directory, renamed into place by ``close``."""

    def __init__(self, out_dir: Path, name: str, spec: StageSpec):
        self.name = name
        self.path = out_dir / name
        self.tmp = temp_sibling(self.path)
        self.docs = 0
        self.tokens = 0
        self._parquet = spec.output_format == "parquet"
        self._schema = _PARQUET_SCHEMAS[spec.record_format]
        self._rows: list[dict[str, Any]] = []
        if self._parquet:
            self._pq = pq.ParquetWriter(self.tmp, self._schema, compression="zstd")
        else:
            self._file: BinaryIO = open(self.tmp, "wb")  # noqa: SIM115 - closed in close/abort
            self._zst = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(self._file, closefd=False)

    def write(self, record: dict[str, Any], tokens: int) -> None:
        self.docs += 1
        self.tokens += tokens
        if self._parquet:
            self._rows.append(record)
            if len(self._rows) >= PARQUET_ROW_GROUP:
                self._flush()
        else:
            self._zst.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")

    def _flush(self) -> None:
        if self._rows:
            self._pq.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> ShardInfo:
        if self._parquet:
            self._flush()
            self._pq.close()
        else:
            self._zst.close()
            self._file.close()
        publish(self.tmp, self.path)
        return ShardInfo(self.name, self.docs, self.tokens, self.path.stat().st_size, file_sha256(self.path))

    def abort(self) -> None:
        try:
            if self._parquet:
                self._pq.close()
            else:
                self._zst.close()
                self._file.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _shard_name(spec: StageSpec, index: int) -> str:
    return f"{spec.name}-{index:05d}.{spec.output_format}"


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    """``{"l2": {"classifier": "v1"}}`` -> ``("l2.classifier", "v1")``; list items become values."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}" if prefix else str(k), v)
    elif isinstance(value, list):
        for v in value:
            yield from _flatten(prefix, v)
    elif value is not None:
        yield prefix, str(value)




# ---------------------------------------------------------------- export


@dataclass
class _Tally:
    """What the stream delivered: per-cell counts, model versions seen, skipped records, selection hash."""

    cells: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    versions: dict[str, set[str]] = field(default_factory=dict)
    skipped: int = 0
    selection: Any = field(default_factory=hashlib.sha256)
    _seen_models: set[str] = field(default_factory=set)

    def add(self, row: dict[str, Any]) -> None:
        self.selection.update(f"{row['tier']}/{row['doc_id']}/{row['epoch']}\n".encode())
        cell = self.cells.setdefault((row["tier"], row["domain"]), {"docs": 0, "tokens": 0, "repeats": 0})
        cell["docs"] += 1
        cell["tokens"] += row["tokens"]
        cell["repeats"] += row["epoch"] > 0
        models = row["models"]
        if models and models not in self._seen_models:  # many records share one models string
            self._seen_models.add(models)
            for key, value in _flatten("", loads(models)):
                self.versions.setdefault(key, set()).add(value)


def export_stage(store: TierStore, spec: StageSpec, out_dir: str | Path) -> Manifest:
    """Sample the stage's mixture from the store, write its shards and ``manifest.json`` into ``out_dir``.

    Shards of an earlier export of the same stage in ``out_dir`` that this one no
    longer writes are removed, so the directory always matches its manifest.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tally = _Tally()
    shards: list[ShardInfo] = []
    con = connect(store)
    try:
        available, cell_req, tier_req = _select(con, spec)
        stream = _stream_sql(spec)
        reader = con.sql(stream, params=_bound(spec, stream)).to_arrow_reader(STREAM_BATCH_ROWS)
        writer: _ShardWriter | None = None
        try:
            for batch in reader:
                for row in batch.to_pylist():
                    record = _format_record(spec, row)
                    if record is None:
                        tally.skipped += 1
                        continue
                    if writer is None:
                        writer = _ShardWriter(out, _shard_name(spec, len(shards)), spec)
                    writer.write(record, row["tokens"])
                    tally.add(row)
                    if writer.docs >= spec.shard_max_docs:
                        shards.append(writer.close())
                        writer = None
            if writer is not None:
                shards.append(writer.close())
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    finally:
        con.close()

    written = {s.path for s in shards}
    for ext in OUTPUT_FORMATS:
        for old in out.glob(f"{spec.name}-[0-9][0-9][0-9][0-9][0-9].{ext}"):
            if old.name not in written:
                old.unlink()

    manifest = _manifest(store, spec, out, available, cell_req, tier_req, tally, shards)
    write_text_atomic(manifest.path, json.dumps(manifest.as_dict(), ensure_ascii=False, indent=2) + "\n")
    return manifest


def _manifest(
    store: TierStore,
    spec: StageSpec,
    out: Path,
    available: dict[tuple[str, str], tuple[int, int]],
    cell_req: dict[tuple[str, str], int],
    tier_req: dict[str, int],
    tally: _Tally,
    shards: list[ShardInfo],
) -> Manifest:
    """Requested vs delivered per cell, tier and domain, and a sentence for every shortfall."""
    zero = {"docs": 0, "tokens": 0, "repeats": 0}
    cells, shortfalls = [], []
    for tier, domain in sorted(set(cell_req) | set(available), key=lambda k: (TIERS.index(k[0]), k[1])):
        n_avail, tok_avail = available.get((tier, domain), (0, 0))
        got = tally.cells.get((tier, domain), zero)
        requested = cell_req.get((tier, domain), 0)
        reps = spec.repetitions(tier)
        exhausted = tok_avail * reps < requested
        cells.append(
            {
                "tier": tier,
                "domain": domain,
                "requested_tokens": requested,
                "available_docs": n_avail,
                "available_tokens": tok_avail,
                "max_repetitions": reps,
                "delivered_docs": got["docs"],
                "delivered_tokens": got["tokens"],
                "repeated_docs": got["repeats"],
                "short_tokens": max(0, requested - got["tokens"]),
                "exhausted": exhausted,
            }
        )
        if exhausted:
            shortfalls.append(
                f"{tier}/{domain}: requested {requested:,} tokens, delivered {got['tokens']:,} "
                f"(all {tok_avail:,} available tokens x at most {reps} repetition(s))"
            )
    tiers: dict[str, dict[str, Any]] = {}
    for tier in spec.tiers:
        tier_cells = [c for c in cells if c["tier"] == tier]
        got_tokens = sum(c["delivered_tokens"] for c in tier_cells)
        tiers[tier] = {
            "weight": spec.tier_weights[tier],
            "requested_tokens": tier_req[tier],
            "delivered_tokens": got_tokens,
            "delivered_docs": sum(c["delivered_docs"] for c in tier_cells),
            "short_tokens": max(0, tier_req[tier] - got_tokens),
        }
        if not any(c["available_docs"] for c in tier_cells):
            shortfalls.append(
                f"{tier}: requested {tier_req[tier]:,} tokens, but no {tier} record matches the spec"
            )
    domains: dict[str, dict[str, Any]] = {}
    for c in cells:
        d = domains.setdefault(
            c["domain"], {"requested_tokens": 0, "delivered_tokens": 0, "delivered_docs": 0}
        )
        d["requested_tokens"] += c["requested_tokens"]
        d["delivered_tokens"] += c["delivered_tokens"]
        d["delivered_docs"] += c["delivered_docs"]
    if tally.skipped:
        shortfalls.append(
            f"{tally.skipped} selected record(s) had no question/answer or dialogue and were skipped"
        )
    requested_total = sum(tier_req.values())
    delivered_total = sum(c["delivered_tokens"] for c in cells)
    index = None
    if spec.index_path is not None:
        index_path = store.root / spec.index_path
        index_manifest = index_path / "manifest.json"
        index = {"path": str(index_path), "exists": index_manifest.exists(),
                 **(json.loads(index_manifest.read_text()) if index_manifest.exists() else {})}
    return Manifest(
        stage=spec.name,
        path=out / MANIFEST_NAME,
        data_root=str(store.root),
        spec=asdict(spec),
        token_budget=spec.token_budget,
        requested_tokens=requested_total,
        delivered_tokens=delivered_total,
        delivered_docs=sum(c["delivered_docs"] for c in cells),
        short=bool(shortfalls),
        shortfalls=shortfalls,
        tiers=tiers,
        domains=dict(sorted(domains.items())),
        cells=cells,
        shards=shards,
        versions={k: sorted(v) for k, v in sorted(tally.versions.items())},
        skipped={"unformattable": tally.skipped},
        selection_sha256=tally.selection.hexdigest(),
        index=index,
    )
