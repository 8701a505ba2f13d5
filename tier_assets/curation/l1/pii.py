"""PII redaction: e-mail addresses, IP addresses and phone numbers become placeholders.

Regexes find candidates; each candidate is then validated (``ipaddress`` plus the
words before it for IPs, E.164 digit counts for phones), because on math, code
and reference text the cost of a false positive (a year, an ISBN, a version
number, a long integer turned into ``<PHONE_NUMBER>``) is corrupted training
text. All patterns are ASCII-bounded (``re.ASCII``) so that PII glued to CJK
text is still found.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tier_assets.curation.pipeline import Doc, Mapper, add_signals

EMAIL = "<EMAIL>"
IP_ADDRESS = "<IP_ADDRESS>"
PHONE_NUMBER = "<PHONE_NUMBER>"


@dataclass(frozen=True)
class PIIConfig:
    """Which kinds of PII to redact, and where."""

    emails: bool = True
    ips: bool = True
    phones: bool = True
    # Phone-like digit groups in code are constants, test data, hashes: not phones.
    no_phone_domains: Iterable[str] = ("code",)
    # Private, loopback, link-local and documentation addresses (10.0.0.1, 127.0.0.1,
    # 192.0.2.1, ::1) identify nobody and fill tutorials and code; keep them by default.
    redact_non_global_ips: bool = False

    def __post_init__(self) -> None:
        for name in ("emails", "ips", "phones", "redact_non_global_ips"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if isinstance(self.no_phone_domains, str):
            raise ValueError("no_phone_domains must be a list of domains, not a string")
        object.__setattr__(self, "no_phone_domains", tuple(self.no_phone_domains))


# Not followed by ":path": git@github.com:org/repo.git is an SSH remote, not a mailbox.
_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][\w.%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-]|:\S)",
    re.ASCII,
)
# Not part of a longer dotted token (1.2.3.4.5, 1.0.0.127.in-addr.arpa, OIDs).
_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\w)", re.ASCII)
# Candidate only: ipaddress decides; times (12:30:45), MACs and C++ scopes fail validation.
_IPV6_RE = re.compile(
    r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?![\w:]|\.\d)", re.ASCII
)
# Words right before a dotted quad that make it a version, section or OID, not an address.
_NOT_IP_CONTEXT = re.compile(
    r"(?<![A-Za-z])(?:version|ver\.?|release|build|rev(?:ision)?|sections?|sec\.|chapter|fig(?:ure|\.)?|table|"
    r"steps?|oid|§)[\s:=\"'(]*$",
    re.IGNORECASE,
)
# International: +CC, an area group (maybe in parentheses), then groups of 2+ digits (so a
# signed decimal like +35236450.6 is no phone); the digit count is checked after.
_PHONE_INTL_RE = re.compile(
    r"(?<![\w+)\]])\+[1-9]\d{0,2}(?:[ .-]?\(\d{1,4}\)|[ .-]?\d{1,4})(?:[ .-]?\d{2,4}){1,6}(?!\w|\.\d)",
    re.ASCII,
)
# US / NANP: (555) 123-4567, 555-123-4567, 555.123.4567, 1-800-555-0199; a bare
# "555 123 4567" is left alone (indistinguishable from a row of numbers).
_PHONE_US_RE = re.compile(
    r"(?<![\w+.-])(?:1[ .-])?(?:\([2-9]\d{2}\)[ .-]?\d{3}[ .-]|[2-9]\d{2}([.-])\d{3}\1)\d{4}(?![\w-]|\.\d)",
    re.ASCII,
)
# Chinese mobile: 1[3-9]X XXXX XXXX, contiguous or grouped by spaces / hyphens.
_PHONE_CN_RE = re.compile(r"(?<![\w+.-])1[3-9]\d(?:[ -]?\d{4}){2}(?![\w-]|\.\d)", re.ASCII)
_DIGIT_RUN = re.compile(r"\d+")


def _is_ip(candidate: str, text: str, start: int, non_global: bool) -> bool:
    try:
        addr = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    if addr.version == 6 and sum(1 for g in candidate.split(":") if g) < 3:
        return False  # "::2" in a slice, "a::b": too little to be an address in text
    if addr.version == 4 and _NOT_IP_CONTEXT.search(text, max(0, start - 24), start):
        return False
    # Multicast groups (224.0.0.251 for mDNS) are protocol constants, not hosts.
    return non_global or (addr.is_global and not addr.is_multicast)


def _redact(
    pattern: re.Pattern[str], text: str, placeholder: str, keep: Callable[[re.Match[str]], str | None]
) -> tuple[str, int]:
    """Replace the matches ``keep`` accepts; ``keep`` returns the matched prefix to replace, or None."""
    count = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal count
        span = keep(m)
        if span is None:
            return m.group(0)
        count += 1
        return placeholder + m.group(0)[len(span) :]

    return pattern.sub(sub, text), count


def _intl_phone(m: re.Match[str]) -> str | None:
    """The longest prefix of the match with 8..15 digits (E.164), so a trailing number is not swallowed."""
    s, total, end = m.group(0), 0, 0
    for run in _DIGIT_RUN.finditer(s):
        if total + len(run.group(0)) > 15:
            break
        total += len(run.group(0))
        end = run.end()
    return s[:end] if total >= 8 else None


class PIIRedactor(Mapper):
    """Replaces e-mails, IP addresses and phone numbers with placeholders and counts them per document."""

    name = "pii"

    def __init__(self, config: PIIConfig | None = None):
        self.config = config or PIIConfig()

    def redact(self, text: str, domain: str | None = None) -> tuple[str, dict[str, int]]:
        """(redacted text, counts per kind) for ``text`` of ``domain``."""
        cfg = self.config
        counts = {"email": 0, "ip": 0, "phone": 0}
        if cfg.emails and "@" in text:
            text, counts["email"] = _redact(_EMAIL_RE, text, EMAIL, lambda m: m.group(0))
        if cfg.ips:
            non_global = cfg.redact_non_global_ips

            def keep_ip(m: re.Match[str]) -> str | None:
                return m.group(0) if _is_ip(m.group(0), m.string, m.start(), non_global) else None

            if ":" in text:
                text, n6 = _redact(_IPV6_RE, text, IP_ADDRESS, keep_ip)
                counts["ip"] += n6
            text, n4 = _redact(_IPV4_RE, text, IP_ADDRESS, keep_ip)
            counts["ip"] += n4
        if cfg.phones and domain not in cfg.no_phone_domains:
            if "+" in text:
                text, n = _redact(_PHONE_INTL_RE, text, PHONE_NUMBER, _intl_phone)
                counts["phone"] += n
            for pattern in (_PHONE_US_RE, _PHONE_CN_RE):
                text, n = _redact(pattern, text, PHONE_NUMBER, lambda m: m.group(0))
                counts["phone"] += n
        return text, counts

    def map_text(self, text: str, doc: Doc) -> str:
        new, counts = self.redact(text, doc.get("domain"))
        add_signals(doc, self.name, counts)
        return new
