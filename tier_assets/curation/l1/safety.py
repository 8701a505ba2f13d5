"""L1 content safety: adult, gambling, lottery and spam pages never pass L1.

Three filters, each a pipeline step:

- :class:`URLSafetyFilter` (early, before the text is measured): the page's host, or any parent domain of
  it, is on a bundled domain blocklist (UT1 categories, ``safety:url_blocklist:<category>``), or the URL
  holds FineWeb's banned words / subwords / two soft words (``safety:url_terms``).
- :class:`ContentSafetyFilter` (after language id): per-language term lists, each term *hard* (explicit) or
  *soft* (also used by medical, sex-education, legal and news pages). A page is rejected as
  ``safety:content_terms:<category>`` when its hard terms reach ``min_hard_hits`` and ``hard_density`` per
  1,000 words (English) or Han characters (Chinese), or when hard + soft terms together reach
  ``soft_min_hits`` and ``soft_density`` with at least ``soft_min_hard_hits`` hard terms among them; a page
  that mentions a term once always survives, and so does a clinical page made only of soft terms.
- :class:`ToxicitySignal`: the share of a page's lines that ``alt-profanity-check`` (a linear model
  shipped in its wheel) calls offensive, in ``signals.safety.toxicity``; ``safety:toxicity`` above the
  recipe threshold. English only: no wheel-packaged model exists for Chinese, so zh records
  ``toxicity_model: none``.

Lists live in ``tier_assets/safety_data`` (provenance in its README) and are named in the recipe's
``safety:`` section; an entry ending in ``.txt`` or ``.txt.gz`` is a file (relative to that folder or
absolute), ``re:<pattern>`` is a regular expression, anything else a literal term. :func:`lists_version`
hashes the content of every list in use, and the L1 recipe fingerprint includes it.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tier_assets.curation.pipeline import Doc, Filter, StepResult, add_signals, reject
from tier_assets.curation.schema import HAN
from tier_assets.curation.validation import check_at_least_one, check_fraction, check_non_negative

SAFETY_DATA = Path(__file__).resolve().parents[2] / "safety_data"
LIST_SUFFIXES = (".txt", ".txt.gz")
TERM_TIERS = ("hard", "soft")
TOXICITY_LANGUAGES = ("en",)
Verdict = tuple[str, str] | None


@dataclass(frozen=True)
class SafetyConfig:
    """The ``safety:`` section of the L1 recipe (see ``recipes/l1.yaml``)."""

    url_filter: bool = True
    url_blocklists: dict[str, list[str]] = field(default_factory=dict)  # category -> list entries
    url_banned_words: list[str] = field(default_factory=list)
    url_banned_subwords: list[str] = field(default_factory=list)
    url_soft_words: list[str] = field(default_factory=list)
    url_soft_threshold: int = 2
    content_filter: bool = True
    language: str | None = None  # which term lists apply to the domain; None = no content filter
    content_terms: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)
    min_hard_hits: int = 2
    hard_density: float = 2.0  # hard terms per 1,000 units
    soft_min_hits: int = 8
    soft_min_distinct: int = 3  # one word repeated (a patent's "vibrator") is not a theme
    soft_min_hard_hits: int = 1  # clinical pages dense in soft terms but with no explicit term survive
    soft_density: float = 12.0  # hard + soft terms per 1,000 units
    suspicious_host_pattern: str | None = None  # hosts (numeric adult / gambling domains) held to a lower bar
    suspicious_host_min_hard_hits: int = 1  # min_hard_hits on such a host
    toxicity: bool = True
    toxicity_threshold: float = 0.5  # share of offensive lines
    toxicity_line_probability: float = 0.8  # a line is offensive at this model probability
    toxicity_min_lines: int = 4
    toxicity_max_lines: int = 200  # lines judged per page (the first ones): bounds the cost of huge pages

    def __post_init__(self) -> None:
        check_at_least_one(self, "url_soft_threshold", "min_hard_hits", "suspicious_host_min_hard_hits", "soft_min_hits", "soft_min_distinct",
                           "toxicity_min_lines", "toxicity_max_lines",
                           integer=True)
        check_non_negative(self, "hard_density", "soft_density")
        check_fraction(self, "toxicity_threshold", "toxicity_line_probability")
        if self.content_filter and self.language is not None and self.language not in self.content_terms:
            raise ValueError(f"SafetyConfig.language {self.language!r} has no content_terms; "
                             f"known: {sorted(self.content_terms)}")
        for language, categories in self.content_terms.items():
            for category, tiers in categories.items():
                unknown = sorted(set(tiers) - set(TERM_TIERS))
                if unknown:
                    raise ValueError(f"SafetyConfig.content_terms[{language!r}][{category!r}]: unknown tier(s) "
                                     f"{unknown}; known: {list(TERM_TIERS)}")
        if self.suspicious_host_pattern is not None:
            _compile_pattern(self.suspicious_host_pattern, "suspicious_host_pattern")
        for entry in self.all_entries():
            if is_file_entry(entry):
                resolve_list_path(entry)
            elif entry.startswith("re:"):
                _compile_pattern(entry[3:], entry)

    def all_entries(self) -> list[str]:
        """Every list entry the config names, in a stable order."""
        entries = [e for cat in sorted(self.url_blocklists) for e in self.url_blocklists[cat]]
        entries += [*self.url_banned_words, *self.url_banned_subwords, *self.url_soft_words]
        for language in sorted(self.content_terms):
            for category in sorted(self.content_terms[language]):
                for tier in TERM_TIERS:
                    entries += self.content_terms[language][category].get(tier, [])
        return entries


def is_file_entry(entry: str) -> bool:
    return entry.endswith(LIST_SUFFIXES)


def resolve_list_path(entry: str) -> Path:
    """A list file named in the recipe: absolute, or relative to ``tier_assets/safety_data``."""
    path = Path(entry) if Path(entry).is_absolute() else SAFETY_DATA / entry
    if not path.is_file():
        raise ValueError(f"safety: list file {entry!r} not found (looked at {path})")
    return path


def _compile_pattern(pattern: str, entry: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"safety: bad regular expression in list entry {entry!r}: {exc}") from exc


def read_list_file(path: Path) -> tuple[str, ...]:
    """Non-empty, non-comment lines of a (gzipped) list file; ``#`` starts a comment line."""
    stat = path.stat()
    return _read_list_file(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _read_list_file(path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    """Cached by modification time and size, so a list edited in place is read again."""
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    lines = (line.strip() for line in raw.decode("utf-8").splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def expand(entries: list[str]) -> list[str]:
    """List entries with every file replaced by its lines."""
    out: list[str] = []
    for entry in entries:
        out.extend(read_list_file(resolve_list_path(entry)) if is_file_entry(entry) else [entry])
    return out


def lists_version(config: SafetyConfig) -> str:
    """Hash of the content of every list in use, so a new list makes L1 partitions stale."""
    h = hashlib.blake2b(digest_size=12)
    for entry in config.all_entries():
        h.update(entry.encode("utf-8"))
        if is_file_entry(entry):
            h.update(resolve_list_path(entry).read_bytes())
        h.update(b"\x1f")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------------
# URL filter
# --------------------------------------------------------------------------------------------------------

_URL_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize_url_word(word: str) -> str:
    """FineWeb's URL normalization: lower case, only letters and digits."""
    return _URL_NON_ALNUM.sub("", word.lower())


def url_host(url: str) -> str:
    """The lower-case host of ``url`` without ``www.``, port or trailing dot ('' when there is none)."""
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    except ValueError:
        return ""
    host = host.rstrip(".")
    return host[4:] if host.startswith("www.") else host


def parent_domains(host: str) -> list[str]:
    """``a.b.example.com`` -> itself and every parent with at least two labels (no public-suffix list)."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


@lru_cache(maxsize=8)
def _blocklist(entries: tuple[tuple[str, tuple[str, ...]], ...], version: str) -> dict[str, str]:
    """Domain -> category; ``version`` (the lists' content hash) keys the cache."""
    domains: dict[str, str] = {}
    for category, items in entries:
        for domain in expand(list(items)):
            domains.setdefault(domain.lower().lstrip("."), category)
    return domains


class URLSafetyFilter(Filter):
    """Rejects pages whose domain is blocklisted or whose URL carries banned words (FineWeb's URL filter)."""

    name = "safety_url"

    def __init__(self, config: SafetyConfig):
        self.config = config
        key = tuple((cat, tuple(items)) for cat, items in sorted(config.url_blocklists.items()))
        self.domains = _blocklist(key, lists_version(SafetyConfig(url_blocklists=config.url_blocklists)))
        self.banned_words = {normalize_url_word(w) for w in expand(config.url_banned_words)} - {""}
        self.soft_words = {normalize_url_word(w) for w in expand(config.url_soft_words)} - {""}
        subwords = sorted({normalize_url_word(w) for w in expand(config.url_banned_subwords)} - {""})
        self.subwords = re.compile("|".join(map(re.escape, subwords))) if subwords else None

    def check(self, doc: Doc) -> Verdict:
        url = doc.get("url")
        if not self.config.url_filter or not url:
            return None
        host = url_host(url)
        for domain in parent_domains(host):
            category = self.domains.get(domain)
            if category:
                add_signals(doc, "safety", {"url_blocklist": category, "url_domain": domain})
                return f"safety:url_blocklist:{category}", f"domain {domain} is on the {category} blocklist"
        return self.check_terms(doc, url)

    def check_terms(self, doc: Doc, url: str) -> Verdict:
        words = set(_URL_NON_ALNUM.split(url.lower())) - {""}
        banned = sorted(words & self.banned_words)
        soft = sorted(words & self.soft_words)
        match = self.subwords.search(normalize_url_word(url)) if self.subwords else None
        if banned:
            found = f"banned word(s) {banned}"
        elif len(soft) >= self.config.url_soft_threshold:
            found = f"{len(soft)} soft banned words {soft} (threshold {self.config.url_soft_threshold})"
        elif match:
            found = f"banned subword {match.group(0)!r}"
        else:
            return None
        add_signals(doc, "safety", {"url_terms": found})
        return "safety:url_terms", f"URL has {found}"


# --------------------------------------------------------------------------------------------------------
# Content term filter
# --------------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")


def tokens(text: str, language: str) -> list[str] | str:
    """What terms are matched against: characters for Chinese, word and symbol tokens otherwise."""
    return text if language == "zh" else _TOKEN.findall(text)


Label = tuple[str, str]  # (category, tier)


_ASCII_ALNUM = re.compile(r"[a-z0-9]")


def _bounded(term: str) -> str:
    """A Chinese-list term as a regex; a Latin end must not run into a word ("bbin" is not in "robbing")."""
    head = r"(?<![a-z0-9])" if _ASCII_ALNUM.match(term[0]) else ""
    tail = r"(?![a-z0-9])" if _ASCII_ALNUM.match(term[-1]) else ""
    return head + re.escape(term) + tail


@dataclass(frozen=True)
class TermIndex:
    """Every category's hard and soft terms of one language, matched in one pass over the text.

    Chinese literals are one alternation (longest first) scanned by the regex engine; other languages look
    token n-grams up in one dict (one pass per term length, not per category). ``re:`` patterns are one
    alternation with a named group per label. A match is ``(label, term)``."""

    literals: dict[tuple[str, ...], tuple[Label, ...]]
    lengths: tuple[int, ...]
    literal_regex: re.Pattern[str] | None  # Chinese only
    pattern_regex: re.Pattern[str] | None
    group_labels: dict[str, Label]
    language: str

    @classmethod
    def build(cls, categories: dict[str, dict[str, list[str]]], language: str) -> TermIndex:
        literals: dict[tuple[str, ...], list[Label]] = {}
        groups: list[str] = []
        group_labels: dict[str, Label] = {}
        for category in sorted(categories):
            for tier in TERM_TIERS:
                label = (category, tier)
                items = expand(categories[category].get(tier, []))
                for term in (t for t in items if not t.startswith("re:")):
                    key = tuple(tokens(term.lower(), language))
                    if key and label not in literals.setdefault(key, []):
                        literals[key].append(label)
                patterns = [f"(?:{t[3:]})" for t in items if t.startswith("re:")]
                if patterns:
                    name = f"g{len(groups)}"
                    group_labels[name] = label
                    groups.append(f"(?P<{name}>{'|'.join(patterns)})")
        literal_regex = None
        if language == "zh" and literals:
            ordered = sorted(("".join(k) for k in literals), key=lambda t: (-len(t), t))
            literal_regex = re.compile("|".join(map(_bounded, ordered)))
        return cls({k: tuple(v) for k, v in literals.items()}, tuple(sorted({len(k) for k in literals})),
                   literal_regex, re.compile("|".join(groups)) if groups else None, group_labels, language)

    def matches(self, lowered: str) -> list[tuple[Label, str]]:
        """Every occurrence of every term in ``lowered`` (already lower-cased)."""
        found: list[tuple[Label, str]] = []
        if self.literal_regex is not None:
            for m in self.literal_regex.finditer(lowered):
                found.extend((label, m.group(0)) for label in self.literals[tuple(m.group(0))])
        elif self.literals:
            units = _TOKEN.findall(lowered)
            for n in self.lengths:
                for gram in zip(*(units[k:] for k in range(n)), strict=False):
                    labels = self.literals.get(gram)
                    if labels:
                        found.extend((label, " ".join(gram)) for label in labels)
        if self.pattern_regex is not None:
            for m in self.pattern_regex.finditer(lowered):
                found.append((self.group_labels[m.lastgroup or ""], f"re:{m.group(0)}"))
        return found


def count_units(text: str, language: str) -> int:
    """Han characters for Chinese, words otherwise: the denominator of the term density."""
    return len(HAN.findall(text)) if language == "zh" else len(_WORD.findall(text))


class ContentSafetyFilter(Filter):
    """Rejects pages dense in adult / gambling / lottery / spam terms of their language."""

    name = "safety_content"

    def __init__(self, config: SafetyConfig):
        self.config = config
        self.language = config.language
        language = self.language or ""
        self.index = TermIndex.build(config.content_terms.get(language, {}), language)
        self.enabled = bool(self.index.literals or self.index.pattern_regex)
        pattern = config.suspicious_host_pattern
        self.suspicious_host = re.compile(pattern) if pattern else None

    def min_hard_hits(self, doc: Doc) -> int:
        """The recipe's ``min_hard_hits``, or the lower bar on a suspicious host (records the signal)."""
        host = url_host(doc.get("url") or "")
        if self.suspicious_host is not None and host and self.suspicious_host.search(host):
            add_signals(doc, "safety", {"suspicious_host": host})
            return self.config.suspicious_host_min_hard_hits
        return self.config.min_hard_hits

    def measure(self, text: str) -> dict[str, dict[str, int]]:
        """Hard and soft hit counts and distinct terms per category (only categories with a hit)."""
        hits: dict[str, dict[str, int]] = {}
        distinct: dict[str, set[str]] = {}
        for (category, tier), term in self.index.matches(text.lower()):
            counts = hits.setdefault(category, {"hard": 0, "soft": 0, "distinct": 0})
            counts[tier] += 1
            distinct.setdefault(category, set()).add(term)
        for category, terms in distinct.items():
            hits[category]["distinct"] = len(terms)
        return hits

    def decide(self, hits: dict[str, dict[str, int]], units: int,
               min_hard_hits: int | None = None) -> tuple[str, str] | None:
        """The first category over a threshold: (category, detail), else None."""
        c = self.config
        min_hard = c.min_hard_hits if min_hard_hits is None else min_hard_hits
        per_k = 1000 / max(units, 1)
        for category, n in sorted(hits.items(), key=lambda kv: -(kv[1]["hard"] * 4 + kv[1]["soft"])):
            hard_density = n["hard"] * per_k
            all_density = (n["hard"] + n["soft"]) * per_k
            if n["hard"] >= min_hard and hard_density >= c.hard_density:
                return category, (f"{n['hard']} hard terms, {hard_density:.1f} per 1,000 units "
                                  f">= hard_density {c.hard_density}")
            if (n["hard"] >= c.soft_min_hard_hits and n["hard"] + n["soft"] >= c.soft_min_hits
                    and n["distinct"] >= c.soft_min_distinct and all_density >= c.soft_density):
                return category, (f"{n['hard']} hard + {n['soft']} soft terms, {all_density:.1f} per 1,000 "
                                  f"units >= soft_density {c.soft_density}")
        return None

    def check(self, doc: Doc) -> Verdict:
        if not self.config.content_filter or not self.enabled:
            return None
        text = doc.get("text") or ""
        hits = self.measure(text)
        units = count_units(text, self.language or "")
        add_signals(doc, "safety", {"terms": hits, "units": units})
        decision = self.decide(hits, units, self.min_hard_hits(doc))
        if decision is None:
            return None
        category, detail = decision
        return f"safety:content_terms:{category}", f"{self.language}: {detail}"


# --------------------------------------------------------------------------------------------------------
# Toxicity signal
# --------------------------------------------------------------------------------------------------------

_MIN_LINE_WORDS = 3


@lru_cache(maxsize=1)
def _profanity_model() -> Any:
    from profanity_check import predict_prob  # alt-profanity-check: a linear model inside the wheel

    return predict_prob


def scored_lines(text: str, limit: int) -> list[str]:
    """Up to ``limit`` lines with enough words to judge (menus and single words say nothing about tone)."""
    lines = [line for line in text.splitlines() if len(line.split()) >= _MIN_LINE_WORDS]
    return lines[:limit]


class ToxicitySignal(Filter):
    """Offensive-line share from alt-profanity-check (English); rejects above the recipe threshold.

    All documents' lines go to the model in one call (its per-call overhead dwarfs a line's cost)."""

    name = "safety_toxicity"

    def __init__(self, config: SafetyConfig):
        self.config = config
        self.enabled = config.toxicity and config.language in TOXICITY_LANGUAGES
        self.predict = _profanity_model() if self.enabled else None

    def process(self, docs: list[Doc]) -> StepResult:
        if not self.config.toxicity or self.config.language is None:
            return StepResult(docs, [])
        if not self.enabled:
            for doc in docs:
                add_signals(doc, "safety", {"toxicity_model": "none"})
            return StepResult(docs, [])
        per_doc = [scored_lines(doc.get("text") or "", self.config.toxicity_max_lines) for doc in docs]
        flat = [line for lines in per_doc for line in lines]
        offensive = (self.predict(flat) >= self.config.toxicity_line_probability).tolist() if flat else []
        kept, rejected, start = [], [], 0
        for doc, lines in zip(docs, per_doc, strict=True):
            verdict = self.judge(doc, len(lines), sum(offensive[start:start + len(lines)]))
            start += len(lines)
            (kept if verdict is None else rejected).append(doc if verdict is None else reject(doc, self.name,
                                                                                             *verdict))
        return StepResult(kept, rejected)

    def check(self, doc: Doc) -> Verdict:
        """One document on its own (tests, benchmarks); the pipeline calls :meth:`process`."""
        rejected = self.process([doc]).rejected
        return (doc["reason"], doc["detail"]) if rejected else None

    def judge(self, doc: Doc, n_lines: int, toxic: int) -> Verdict:
        """Record the signal; reject when enough lines were judged and the offensive share is over threshold."""
        share = toxic / n_lines if n_lines else 0.0
        add_signals(doc, "safety", {"toxicity": round(share, 4), "toxic_lines": toxic,
                                    "toxicity_model": "alt-profanity-check"})
        if n_lines >= self.config.toxicity_min_lines and share >= self.config.toxicity_threshold:
            return "safety:toxicity", (f"{toxic}/{n_lines} lines offensive ({share:.2f} >= "
                                       f"toxicity_threshold {self.config.toxicity_threshold})")
        return None
