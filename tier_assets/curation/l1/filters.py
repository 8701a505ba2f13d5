"""L1 rule filters: Gopher quality and repetition, C4, FineWeb, UltraData length; Chinese, code and math rules.

The four English web filters reproduce DataTrove 0.10's decisions for the same thresholds (DataTrove is the
reference implementation FineWeb was built with), but run several times faster: the word tokenizer is a
pure-Python port of the spaCy English rules DataTrove tokenizes with, memoized per whitespace-separated chunk,
the statistics are computed with C-level iteration, and a :class:`FilterGroup` tokenizes each document once
for all of its filters. Every config is a validated dataclass whose defaults are the published thresholds;
``None`` disables a rule. Rejections carry ``reason`` ``<filter>:<rule>`` and a detail with the measured value
and the threshold; cheap measurements are recorded under ``signals[<filter>]``.

Deliberate differences from DataTrove: :class:`C4QualityFilter` only decides (DataTrove also rewrites the
text to the lines it kept; L1 keeps text edits in mappers, where each is recorded), and word n-grams are
compared as token tuples rather than as concatenated strings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from itertools import chain, count
from typing import Any

import numpy as np

from tier_assets.curation.pipeline import Doc, Filter, StepResult, add_signals, reject
from tier_assets.curation.validation import (
    check_at_least_one,
    check_fraction,
    check_non_negative,
    check_order,
)

Verdict = tuple[str, str] | None

# --------------------------------------------------------------------------------------------------------
# Word tokenizer: spaCy 3.x English rules (prefixes, suffixes, infixes, URL match, special cases), which is
# what DataTrove 0.10 splits English words with. Ported so decisions match without depending on spaCy.
# --------------------------------------------------------------------------------------------------------


def _listed(items: str) -> list[str]:
    """The space-separated items of a table literal (kept in spaCy's layout to ease comparison)."""
    return items.split()


def _char_class(code_points: Iterable[int]) -> str:
    """Body of a regex character class covering ``code_points``, as compact ranges."""
    cps = sorted(set(code_points))
    out, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        first, last = re.escape(chr(cps[i])), re.escape(chr(cps[j]))
        out.append(first if i == j else f"{first}-{last}")
        i = j + 1
    return "".join(out)


_CASED = [*range(0x250), *range(0x386, 0x3D0), *range(0x400, 0x460), *range(0x1E00, 0x1F00), *range(0xFF21, 0xFF5B)]
# scripts without case (Hebrew, Arabic, Indic, CJK, Hangul...) count as both lower and upper case in spaCy
_UNCASED = (
    "\u0591-\u05f4\u0620-\u064a\u066e-\u06d5\u06e5-\u06ff\u0750-\u077f\u08a0-\u08bd\u0900-\u09ff"
    "\u0b80-\u0cff\u0d80-\u0dff\u1100-\u137f\u2e80-\u2fdf\u2ff0-\u30ff\u31c0-\u31ef\u3200-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\ufb1d-\ufbb1\ufbd3-\ufd3d\ufd50-\ufdc7\ufdf0-\ufdfb"
    "\ufe30-\ufe4f\ufe70-\ufefc\U0001ee00-\U0001eebb\U0001f200-\U0001f2ff\U00020000-\U0002a6df"
    "\U0002a700-\U0002ebef\U0002f800-\U0002fa1f"
)
_LOWER = _char_class(c for c in _CASED if chr(c).islower()) + _UNCASED
_UPPER = _char_class(c for c in _CASED if chr(c).isupper()) + _UNCASED
_ALPHA = _LOWER + _UPPER
_ICONS = _char_class(
    c for c in chain(range(0x3400), range(0xA000, 0xD800), range(0xE000, 0x1FB00)) if unicodedata.category(chr(c)) == "So"
)
_PUNCT = _listed("… …… , : ; ! ? ¿ ؟ ¡ ( ) [ ] { } < > _ # * & 。 ？ ！ ， 、 ； ： ～ · । ، ۔ ؛ ٪")
_QUOTES = _listed("' \" ” “ ` ‘ ´ ’ ‚ , „ » « 「 」 『 』 （ ） 〔 〕 【 】 《 》 〈 〉 〈 〉 ⟦ ⟧")
_CURRENCY = _listed("$ £ € ¥ ฿ US$ C$ A$ ₽ ﷼ ₴ ₠ ₡ ₢ ₣ ₤ ₥ ₦ ₧ ₨ ₩ ₪ ₫ ₭ ₮ ₯ ₰ ₱ ₲ ₳ ₵ ₶ ₷ ₸ ₹ ₺ ₻ ₼ ₾ ₿")
_UNITS = _listed(
    "km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft kg g mg µg t lb oz m/s km/h kmh mph "
    "hPa Pa mbar mb MB kb KB gb GB tb TB T G M K %"
)
_HYPHENS = _listed("- – — -- --- —— ~")
_EMOTICONS = _listed(
    "(*_*) (-8 (-: (-; (-_-) (._.) (: (; (= (>_<) (^_^) (o: (¬_¬) (ಠ_ಠ) (╯°□°）╯︵┻━┻ )-: ): -_- -__- ._. 0.0 "
    "0.o 0_0 0_o 8) 8-) 8-D 8D :'( :') :'-( :'-) :( :(( :((( :() :) :)) :))) :* :-( :-(( :-((( :-) :-)) :-))) "
    ":-* :-/ :-0 :-3 :-> :-D :-O :-P :-X :-] :-o :-p :-x :-| :-} :/ :0 :1 :3 :> :D :O :P :X :] :o :o) :p :x :| "
    ":} ;) ;-) ;-D ;D ;_; <.< </3 <3 <33 <333 =( =) =/ =3 =D =[ =] =| >.< >.> >:( >:o ><(((*> @_@ O.O O.o O_O "
    "O_o V.V V_V XD XDD [-: [: [= ]= ^_^ ^__^ ^___^ o.0 o.O o.o o_0 o_O o_o v.v v_v xD xDD ¯\\(ツ)/¯ ಠ_ಠ ಠ︵ಠ"
)
_ABBREVIATIONS = _listed(
    "Mt. Ak. Ala. Apr. Ariz. Ark. Aug. Calif. Colo. Conn. Dec. Del. Feb. Fla. Ga. Ia. Id. Ill. Ind. Jan. Jul. "
    "Jun. Kan. Kans. Ky. La. Mar. Mass. Mich. Minn. Miss. N.C. N.D. N.H. N.J. N.M. N.Y. Neb. Nebr. Nev. Nov. "
    "Oct. Okla. Ore. Pa. S.C. Sep. Sept. Tenn. Va. Wash. Wis. a.m. Adm. Bros. co. Co. Corp. D.C. Dr. e.g. E.g. "
    "E.G. Gen. Gov. i.e. I.e. I.E. Inc. Jr. Ltd. Md. Messrs. Mo. Mont. Mr. Mrs. Ms. p.m. Ph.D. Prof. Rep. Rev. "
    "Sen. St. vs. v.s."
)


def _alternatives(items: Iterable[str]) -> str:
    return "|".join(map(re.escape, items))


_SINGLE_PUNCT = re.escape("".join(p for p in _PUNCT + _QUOTES if len(p) == 1))
# spaCy's suffix rule for "." embeds its '|'-joined punctuation list in a character class, '|' included
_PUNCT_CLASS = re.escape("".join(_PUNCT)) + "|"
_QUOTE_CLASS = re.escape("".join(_QUOTES))
_PREFIX = re.compile(
    r"\.\.+|US\$|C\$|A\$|\+(?![0-9])|"
    f"[§%=—–{_SINGLE_PUNCT}{re.escape(''.join(c for c in _CURRENCY if len(c) == 1))}{_ICONS}]"
)
# spaCy takes the leftmost position from which any suffix rule matches to the end; the alternatives below are
# spaCy's, regrouped (single characters merged into one class), which leaves that position unchanged.
_SUFFIX = re.compile(
    "(?:"
    + "|".join(
        [
            f"[{_SINGLE_PUNCT}—–{_ICONS}]",
            r"\.\.+",
            "……",
            "'s",
            "'S",
            "’s",
            "’S",
            r"(?<=[0-9])\+",
            r"(?<=°[FfCcKk])\.",
            f"(?<=[0-9])(?:{_alternatives(_CURRENCY)})",
            f"(?<=[0-9])(?:{_alternatives(_UNITS)})",
            f"(?<=[0-9{_LOWER}%²\\-\\+{_PUNCT_CLASS}{_QUOTE_CLASS}])\\.",
            f"(?<=[{_UPPER}][{_UPPER}])\\.",
        ]
    )
    + r")\Z"
)
_INFIX = re.compile(
    "|".join(
        [
            r"\.\.+",
            "…",
            f"[{_ICONS}]",
            r"(?<=[0-9])[+\-\*^](?=[0-9-])",
            f"(?<=[{_LOWER}{_QUOTE_CLASS}])\\.(?=[{_UPPER}{_QUOTE_CLASS}])",
            f"(?<=[{_ALPHA}]),(?=[{_ALPHA}])",
            f"(?<=[{_ALPHA}0-9])(?:{_alternatives(_HYPHENS)})(?=[{_ALPHA}])",
            f"(?<=[{_ALPHA}0-9])[:<>=/](?=[{_ALPHA}])",
        ]
    )
)
_URL = re.compile(
    r"(?:(?:[\w\+\-\.]{2,})://)?(?:\S+(?::\S*)?@)?(?:"
    r"(?!(?:10|127)(?:\.\d{1,3}){3})(?!(?:169\.254|192\.168)(?:\.\d{1,3}){2})"
    r"(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})"
    r"(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}"
    r"(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))"
    r"|(?:(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62})?[A-Za-z0-9\u00a1-\uffff]\.)+"
    f"(?:[{_LOWER}]{{2,63}}))"
    r"(?::\d{2,5})?(?:[/?#]\S*)?\Z"
)


def _special_cases() -> dict[str, tuple[str, ...]]:
    """spaCy's English tokenizer exceptions: contractions split, abbreviations and emoticons kept whole."""
    exc: dict[str, tuple[str, ...]] = {}

    def contraction(word: str, *tails: str) -> None:
        for w in (word, word.title()):
            exc[w + "".join(tails)] = (w, *tails)
            bare = tuple(t.replace("'", "") for t in tails)
            exc[w + "".join(bare)] = (w, *bare)

    contraction("i", "'m")
    contraction("i", "'m", "a")
    for w in ("i", "you", "he", "she", "it", "we", "they"):
        for tails in (("'ll",), ("'ll", "'ve"), ("'d",), ("'d", "'ve")):
            contraction(w, *tails)
    for w in ("i", "you", "we", "they"):
        contraction(w, "'ve")
    for w in ("you", "we", "they"):
        contraction(w, "'re")
    for w in ("he", "she", "it"):
        contraction(w, "'s")
    for w in ("who", "what", "when", "where", "why", "how", "there", "that", "this", "these", "those"):
        if w not in ("these", "those"):
            contraction(w, "'s")
        for tails in (("'ll",), ("'ll", "'ve"), ("'d",), ("'d", "'ve")):
            contraction(w, *tails)
        if w not in ("that", "this"):
            contraction(w, "'re")
            contraction(w, "'ve")
    for w in ("ca", "could", "do", "does", "did", "had", "may", "might", "must", "need", "ought", "sha", "should",
              "wo", "would"):
        contraction(w, "n't")
        contraction(w, "n't", "'ve")
    for w in ("could", "might", "must", "should", "would"):
        contraction(w, "'ve")
    for w in ("ai", "are", "is", "was", "were", "have", "has", "dare"):
        contraction(w, "n't")
    for hour in range(1, 13):
        for period in ("a.m.", "am", "p.m.", "pm"):
            exc[f"{hour}{period}"] = (str(hour), period)
    for pair in ("y' all", "y all", "how 'd 'y", "How 'd 'y", "not 've", "not ve", "Not 've", "Not ve", "can not",
                 "Can not", "gon na", "Gon na", "got ta", "Got ta", "let 's", "Let 's", "c'm on", "C'm on"):
        exc[pair.replace(" ", "")] = tuple(pair.split())
    dropped_g = ("doin", "goin", "nothin", "nuthin", "ol", "somethin", "lovin", "havin")
    singles = [
        "'", '\\")', "<space>", "''", "C++", "\\t", "\\n", "\u2014", "'em", "em", "'ll", "ll", "'nuff", "nuff",
        "'S", "'s", "\u2018S", "\u2018s", "and/or", "w/o", "'re", "'d", "'Cause", "'cause", "'cos", "'Cos",
        "'coz", "'Coz", "'cuz", "'Cuz", "'bout", "ma'am", "Ma'am", "o'clock", "O'clock",
        *(f"{c}." for c in "abcdefghijklmnopqrstuvwxyzäöü"),
        *(w + tail for word in dropped_g for w in (word, word.title()) for tail in ("", "'")),
        *_ABBREVIATIONS,
        *_EMOTICONS,
    ]
    exc.update((s, (s,)) for s in singles)
    exc.update((f"°{unit}.", ("°", unit, ".")) for unit in "CFKcfk")
    for word in ("ill", "its", "hell", "shell", "shed", "were", "well", "whore"):
        exc.pop(word, None)
        exc.pop(word.title(), None)
    exc.update({k.replace("'", "’"): tuple(p.replace("'", "’") for p in v) for k, v in exc.items() if "'" in k})
    return exc


_SPECIALS = _special_cases()


def _find_suffix(s: str) -> int:
    """Length of the suffix spaCy would split off ``s`` (0 for none); searches only the tail when it can."""
    start = max(0, len(s) - 8)
    m = _SUFFIX.search(s, start)
    if m is None:
        return 0
    if start and m.start() == start:  # an ellipsis may run further left than the window
        m = _SUFFIX.search(s)
        assert m is not None
    return len(s) - m.start()


def _split_affixes(chunk: str, specials: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """spaCy's ``_split_affixes`` + ``_attach_tokens`` for one whitespace-free chunk."""
    s = chunk
    prefixes: list[str] = []
    suffixes: list[str] = []
    last = 0
    while s and len(s) != last:
        if s in specials:
            break
        last = len(s)
        m = _PREFIX.match(s)
        pre_len = m.end() if m else 0
        if pre_len:
            prefix, minus_pre = s[:pre_len], s[pre_len:]
            if minus_pre and minus_pre in specials:
                s = minus_pre
                prefixes.append(prefix)
                break
        suf_len = _find_suffix(s[pre_len:])
        if suf_len:
            suffix, minus_suf = s[-suf_len:], s[:-suf_len]
            if minus_suf and minus_suf in specials:
                s = minus_suf
                suffixes.append(suffix)
                break
        if pre_len and suf_len and pre_len + suf_len <= len(s):
            s = s[pre_len:-suf_len]
            prefixes.append(prefix)
            suffixes.append(suffix)
        elif pre_len:
            s = minus_pre
            prefixes.append(prefix)
        elif suf_len:
            s = minus_suf
            suffixes.append(suffix)
    tokens = prefixes
    if s:
        if s in specials:
            tokens.extend(specials[s])
        elif s.isalnum() or _URL.match(s):
            tokens.append(s)
        else:
            start = 0
            for m in _INFIX.finditer(s):
                a, b = m.span()
                if a == 0:
                    continue
                if a != start:
                    tokens.append(s[start:a])
                if a != b:
                    tokens.append(s[a:b])
                start = b
            if start < len(s):
                tokens.append(s[start:])
    tokens.extend(reversed(suffixes))
    return tuple(tokens)


# spaCy re-merges special cases that affix splitting cut up (e.g. "''" or "[:" inside a longer chunk)
_MERGES = {split: parts for orth, parts in _SPECIALS.items() if len(split := _split_affixes(orth, {})) > 1}
_MAX_MERGE = max(map(len, _MERGES))


def _merge_specials(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Longest-first, leftmost-first, non-overlapping special-case merges, as spaCy's special matcher does."""
    n = len(tokens)
    spans = [
        (i, length, _MERGES[tokens[i : i + length]])
        for length in range(min(_MAX_MERGE, n), 1, -1)
        for i in range(n - length + 1)
        if tokens[i : i + length] in _MERGES
    ]
    if not spans:
        return tokens
    seen: set[int] = set()
    chosen = []
    for i, length, parts in spans:
        if i not in seen and i + length - 1 not in seen:
            chosen.append((i, length, parts))
        seen.update(range(i, i + length))
    out = list(tokens)
    for i, length, parts in sorted(chosen, reverse=True):
        out[i : i + length] = parts
    return tuple(out)


def _tokenize_chunk(chunk: str) -> tuple[str, ...]:
    found = _SPECIALS.get(chunk)
    if found is not None:
        return found
    if chunk.isalpha():
        return (chunk,)
    tokens = _split_affixes(chunk, _SPECIALS)
    return _merge_specials(tokens) if len(tokens) > 1 else tokens


class _Memo(dict):
    """``key -> fn(key)``, computed once per distinct key; cleared when it outgrows ``limit`` to bound memory.

    Used through ``map(memo.__getitem__, ...)`` so cache hits never leave C.
    """

    def __init__(self, fn: Callable[[str], Any], limit: int) -> None:
        super().__init__()
        self.fn = fn
        self.limit = limit

    def __missing__(self, key: str) -> Any:
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.fn(key)
        return value


_CHUNK_TOKENS = _Memo(_tokenize_chunk, 200_000)


def split_words(text: str) -> list[str]:
    """Word tokens of ``text`` as DataTrove 0.10 gets them for English (spaCy rules, whitespace dropped)."""
    return list(chain.from_iterable(map(_CHUNK_TOKENS.__getitem__, text.split())))


# --------------------------------------------------------------------------------------------------------
# Character sets DataTrove measures with
# --------------------------------------------------------------------------------------------------------

# DataTrove's PUNCTUATION_SET: symbols plus the C0/C1 controls other than tab and newline
_SYMBOLS = frozenset(
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
    + "".join(map(chr, chain(range(0, 9), range(11, 32), range(127, 160))))
)
# Unicode sentence terminals (DataTrove's TERMINAL_PUNCTUATION); spaCy's sentencizer uses the same marks
# minus a few of rare scripts
TERMINAL_PUNCTUATION = (
    "!.?\u0589\u061d\u061e\u061f\u06d4\u0700\u0701\u0702\u07f9\u0837\u0839\u083d\u083e\u0964\u0965"
    "\u104a\u104b\u1362\u1367\u1368\u166e\u1735\u1736\u17d4\u17d5\u17d6\u17d9\u17da\u1803\u1809\u1944"
    "\u1945\u1aa8\u1aa9\u1aaa\u1aab\u1b5a\u1b5b\u1b5e\u1b5f\u1b7d\u1b7e\u1c3b\u1c3c\u1c7e\u1c7f\u203c"
    "\u203d\u2047\u2048\u2049\u2e2e\u2e3c\u2e53\u2e54\u3002\ua4ff\ua60e\ua60f\ua6f3\ua6f7\ua876\ua877"
    "\ua8ce\ua8cf\ua92f\ua9c8\ua9c9\uaa5d\uaa5e\uaa5f\uaaf0\uaaf1\uabeb\ufe52\ufe56\ufe57\uff01\uff0e"
    "\uff1f\uff61\U00010a56\U00010a57\U00010f55\U00010f56\U00010f57\U00010f58\U00010f59\U00010f86"
    "\U00010f87\U00010f88\U00010f89\U00011047\U00011048\U000110be\U000110bf\U000110c0\U000110c1"
    "\U00011141\U00011142\U00011143\U000111c5\U000111c6\U000111cd\U000111de\U000111df\U00011238"
    "\U00011239\U0001123b\U0001123c\U000112a9\U0001144b\U0001144c\U000115c2\U000115c3\U000115c9"
    "\U000115ca\U000115cb\U000115cc\U000115cd\U000115ce\U000115cf\U000115d0\U000115d1\U000115d2"
    "\U000115d3\U000115d4\U000115d5\U000115d6\U000115d7\U00011641\U00011642\U0001173c\U0001173d"
    "\U0001173e\U00011944\U00011946\U00011a42\U00011a43\U00011a9b\U00011a9c\U00011c41\U00011c42"
    "\U00011ef7\U00011ef8\U00011f43\U00011f44\U00016a6e\U00016a6f\U00016af5\U00016b37\U00016b38"
    "\U00016b44\U00016e98\U0001bc9f\U0001da88"
)
_TERMINALS = frozenset(TERMINAL_PUNCTUATION)

# per-token facts, memoized: the token vocabulary is small next to the token stream
_TOKEN_MEMO_LIMIT = 100_000
_IS_WORD = _Memo(lambda t: any(c not in _SYMBOLS for c in t), _TOKEN_MEMO_LIMIT)
_WORD_LEN = _Memo(lambda t: len(t) if _IS_WORD[t] else 0, _TOKEN_MEMO_LIMIT)
_HAS_ALPHA = _Memo(lambda t: any(c.isalpha() for c in t), _TOKEN_MEMO_LIMIT)
_IS_PUNCT = _Memo(lambda t: all(unicodedata.category(c).startswith("P") for c in t), _TOKEN_MEMO_LIMIT)


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(repeated elements, characters in them) counting every occurrence after the first (Gopher's definition)."""
    unique = set(items)
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


# LaTeX math: $$..$$, $..$ within a paragraph (not \$), \[..\], \(..\) and display environments
_INLINE_MATH = re.compile(r"(?<!\\)\$(?:\\\$|[^$\n]|\n(?![ \t]*\n))+?(?<!\\)\$")
_MATH_ENV_OPEN = re.compile(
    r"\\begin\{(equation|align|alignat|gather|multline|eqnarray|displaymath|math|flalign|split|array"
    r"|[pbvBV]?matrix|cases)(\*?)\}"
)
_MATH_START = re.compile(r"[$\\]")
_DELIMITED = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"))
LATEX_PLACEHOLDER = "math"
_LATEX_MARKUP = re.compile(r"\\\\|(?<!\\)[{}&~]")
_SOFT_BREAK = re.compile(r"(?<=[^\n])\n(?=[^\n])")


class _NextOccurrence:
    """``text.find(needle, start)`` for starts that only grow: each needle's answer is reused until passed,
    so an unclosed delimiter repeated n times costs O(n), not the O(n^2) of a regex searching to the end
    from every opener."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._last: dict[str, tuple[int, int]] = {}

    def __call__(self, needle: str, start: int) -> int:
        searched_from, found = self._last.get(needle, (len(self.text) + 1, -1))
        if searched_from <= start and (found == -1 or found >= start):
            return found
        found = self.text.find(needle, start)
        self._last[needle] = (start, found)
        return found


def _math_span_end(text: str, p: int, find: _NextOccurrence) -> int | None:
    """End of the math span opening at ``p`` (``$$..$$``, ``$..$``, ``\\[..\\]``, ``\\(..\\)``, a math
    environment), tried in that order with the shortest body, or None."""
    for opener, closer in _DELIMITED:
        if text.startswith(opener, p):
            q = find(closer, p + len(opener) + 1)  # a body of at least one character
            if q >= 0:
                return q + len(closer)
            break
    if text[p] == "$":
        inline = _INLINE_MATH.match(text, p)  # bounded by the next unescaped $ or blank line
        return inline.end() if inline else None
    env = _MATH_ENV_OPEN.match(text, p)
    if env:
        closer = f"\\end{{{env[1]}{env[2]}}}"
        q = find(closer, env.end())
        if q >= 0:
            return q + len(closer)
    return None


def _replace_math(text: str, placeholder: str) -> str:
    """Every LaTeX math span, scanned left to right, replaced by ``placeholder``; linear in the text."""
    find = _NextOccurrence(text)
    out: list[str] = []
    done = pos = 0
    while (start := _MATH_START.search(text, pos)) is not None:
        p = start.start()
        end = _math_span_end(text, p, find)
        if end is None:
            pos = p + 1
            continue
        out += [text[done:p], placeholder]
        done = pos = end
    out.append(text[done:])
    return "".join(out)


def mask_latex(text: str) -> str:
    """The text as the math domain measures it, so that LaTeX is not counted as symbols or short lines: each
    math span becomes one placeholder word, markup characters (braces, ``&``, ``~``, ``\\\\``) become spaces,
    and single line breaks join lines into paragraphs, as LaTeX and Markdown render them."""
    if "$" in text or "\\" in text:
        text = _LATEX_MARKUP.sub(" ", _replace_math(text, LATEX_PLACEHOLDER))
    return _SOFT_BREAK.sub(" ", text)


class DocView:
    """A document's text and its word tokens, computed once and shared by the filters of a FilterGroup."""

    __slots__ = ("text", "_words", "_masked")

    def __init__(self, text: str) -> None:
        self.text = text
        self._words: list[str] | None = None
        self._masked: DocView | None = None

    @property
    def words(self) -> list[str]:
        if self._words is None:
            self._words = split_words(self.text)
        return self._words

    def masked(self) -> DocView:
        """The view of :func:`mask_latex` (for math documents)."""
        if self._masked is None:
            masked = mask_latex(self.text)
            self._masked = self if masked == self.text else DocView(masked)
        return self._masked


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _rejection(filter_name: str, rule: str, metric: str, value: float, op: str, threshold: float) -> Verdict:
    return f"{filter_name}:{rule}", f"{metric}={_fmt(value)} {op} {_fmt(threshold)}"


def _signal_value(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


class RuleFilter(Filter):
    """A filter measured on a :class:`DocView`, so that a :class:`FilterGroup` can share one tokenization."""

    config: Any

    def check(self, doc: Doc) -> Verdict:
        return self.check_view(doc, DocView(doc["text"]))

    def check_view(self, doc: Doc, view: DocView) -> Verdict:
        signals: dict[str, Any] = {}
        verdict = self.evaluate(view, signals)
        if signals:
            add_signals(doc, self.name, {k: _signal_value(v) for k, v in signals.items()})
        return verdict

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        """Return None to keep or (reason, detail) to reject; put the measured values in ``signals``."""
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------------
# UltraData length rules
# --------------------------------------------------------------------------------------------------------


@dataclass
class LengthConfig:
    """UltraData-Math's length rules: keep 80..1,000,000 characters; drop short documents without punctuation.

    ``sentence_marks`` adds the full-width Chinese comma and full stop to the paper's "." and ",".
    """

    min_chars: int | None = 80
    max_chars: int | None = 1_000_000
    short_doc_chars: int | None = 200
    sentence_marks: str = ".,。，"

    def __post_init__(self) -> None:
        check_non_negative(self, "min_chars", "max_chars", "short_doc_chars", optional=True)
        check_order(self, "min_chars", "max_chars", optional=True)
        if self.short_doc_chars is not None and not self.sentence_marks:
            raise ValueError("LengthConfig.sentence_marks must not be empty when short_doc_chars is set")


class LengthFilter(RuleFilter):
    """Cheap first gate: it also keeps enormous documents away from the costlier filters."""

    name = "length"

    def __init__(self, config: LengthConfig | None = None) -> None:
        self.config = config or LengthConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, n = self.config, len(view.text)
        signals["chars"] = n
        if c.max_chars is not None and n > c.max_chars:
            return _rejection(self.name, "too_long", "chars", n, ">", c.max_chars)
        if c.min_chars is not None and n < c.min_chars:
            return _rejection(self.name, "too_short", "chars", n, "<", c.min_chars)
        if (
            c.short_doc_chars is not None
            and n <= c.short_doc_chars
            and not any(mark in view.text for mark in c.sentence_marks)
        ):
            return f"{self.name}:short_no_punctuation", f"chars={n} <= {c.short_doc_chars} and none of {c.sentence_marks!r}"
        return None


# --------------------------------------------------------------------------------------------------------
# Gopher quality (Rae et al. 2021, table A1), as in DataTrove 0.10
# --------------------------------------------------------------------------------------------------------

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


@dataclass
class GopherQualityConfig:
    """Gopher's quality rules. ``min_alpha_words_ratio`` is DataTrove's ``max_non_alpha_words_ratio``.

    ``mask_latex`` (math domain) measures :func:`mask_latex`'s view of the text.
    """

    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words: tuple[str, ...] = STOP_WORDS
    mask_latex: bool = False

    def __post_init__(self) -> None:
        self.stop_words = tuple(self.stop_words)
        check_non_negative(
            self, "min_doc_words", "max_doc_words", "min_avg_word_length", "max_avg_word_length",
            "max_symbol_word_ratio", "min_stop_words", optional=True,
        )
        check_fraction(
            self, "max_bullet_lines_ratio", "max_ellipsis_lines_ratio", "min_alpha_words_ratio", optional=True
        )
        check_order(self, "min_doc_words", "max_doc_words", optional=True)
        check_order(self, "min_avg_word_length", "max_avg_word_length", optional=True)
        if self.min_stop_words is not None and self.min_stop_words > len(set(self.stop_words)):
            raise ValueError(
                f"GopherQualityConfig.min_stop_words={self.min_stop_words} exceeds the "
                f"{len(set(self.stop_words))} distinct stop_words"
            )


class GopherQualityFilter(RuleFilter):
    """Drops documents whose word statistics are unlike prose (too short/long, symbol-heavy, list-like)."""

    name = "gopher_quality"

    def __init__(self, config: GopherQualityConfig | None = None) -> None:
        self.config = config or GopherQualityConfig()
        self._stop_words = frozenset(self.config.stop_words)

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name = self.config, self.name
        if c.mask_latex:
            view = view.masked()
        text, words = view.text, view.words
        n_words = len(words)
        n_real = sum(map(_IS_WORD.__getitem__, words))
        signals["words"] = n_real
        if c.min_doc_words is not None and n_real < c.min_doc_words:
            return _rejection(name, "word_count", "words", n_real, "<", c.min_doc_words)
        if c.max_doc_words is not None and n_real > c.max_doc_words:
            return _rejection(name, "word_count", "words", n_real, ">", c.max_doc_words)
        if n_real:
            mean_len = sum(map(_WORD_LEN.__getitem__, words)) / n_real
            signals["mean_word_length"] = mean_len
            if c.min_avg_word_length is not None and mean_len < c.min_avg_word_length:
                return _rejection(name, "mean_word_length", "mean_word_length", mean_len, "<", c.min_avg_word_length)
            if c.max_avg_word_length is not None and mean_len > c.max_avg_word_length:
                return _rejection(name, "mean_word_length", "mean_word_length", mean_len, ">", c.max_avg_word_length)
        if c.max_symbol_word_ratio is not None and n_words:
            hash_ratio = text.count("#") / n_words
            if hash_ratio > c.max_symbol_word_ratio:
                return _rejection(name, "hash_ratio", "hash_per_word", hash_ratio, ">", c.max_symbol_word_ratio)
            ellipsis_ratio = (text.count("...") + text.count("…")) / n_words
            if ellipsis_ratio > c.max_symbol_word_ratio:
                return _rejection(
                    name, "ellipsis_ratio", "ellipsis_per_word", ellipsis_ratio, ">", c.max_symbol_word_ratio
                )
        lines = text.splitlines()
        if lines and c.max_bullet_lines_ratio is not None:
            bullets = sum(1 for s in lines if s.lstrip().startswith(("•", "-"))) / len(lines)
            if bullets > c.max_bullet_lines_ratio:
                return _rejection(name, "bullet_lines", "bullet_lines", bullets, ">", c.max_bullet_lines_ratio)
        if lines and c.max_ellipsis_lines_ratio is not None:
            trailing = sum(1 for s in lines if s.rstrip().endswith(("...", "…"))) / len(lines)
            if trailing > c.max_ellipsis_lines_ratio:
                return _rejection(name, "ellipsis_lines", "ellipsis_lines", trailing, ">", c.max_ellipsis_lines_ratio)
        if c.min_alpha_words_ratio is not None and n_words:
            alpha = sum(map(_HAS_ALPHA.__getitem__, words)) / n_words
            signals["alpha_words_ratio"] = alpha
            if alpha < c.min_alpha_words_ratio:
                return _rejection(name, "alpha_words", "alpha_words_ratio", alpha, "<", c.min_alpha_words_ratio)
        if c.min_stop_words is not None:
            n_stop = len(self._stop_words.intersection(words))
            signals["stop_words"] = n_stop
            if n_stop < c.min_stop_words:
                return _rejection(name, "stop_words", "stop_words", n_stop, "<", c.min_stop_words)
        return None


# --------------------------------------------------------------------------------------------------------
# Gopher repetition, as in DataTrove 0.10
# --------------------------------------------------------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAKS = re.compile(r"\n+")


_U64 = (1 << 64) - 1
_BASE = 0x100000001B3  # multiplier of the polynomial string hash below


def _string_hash(token: str) -> int:
    h = 0
    for ch in token:
        h = (h * _BASE + ord(ch)) & _U64
    return h


_TOKEN_HASH = _Memo(_string_hash, _TOKEN_MEMO_LIMIT)


class _WordNgrams:
    """Word n-grams of one document as 64-bit hashes, for Gopher's n-gram repetition rules.

    Hashing with numpy instead of building strings keeps the per-word work in C. Gopher's top n-grams are
    compared as word sequences, its repeated n-grams as concatenated strings (as DataTrove joins them), so
    each has its own hash; distinct n-grams could share one only by a 64-bit collision.
    """

    _MUL = np.uint64(0x9E3779B97F4A7C15)
    _SHIFT = np.uint64(29)

    def __init__(self, words: list[str]) -> None:
        n = len(words)
        first_seen: dict[str, int] = {}
        ids = np.fromiter(map(first_seen.setdefault, words, count()), dtype=np.uint64, count=n)
        self._seq = {1: ids}
        self._text = {1: np.fromiter(map(_TOKEN_HASH.__getitem__, words), dtype=np.uint64, count=n)}
        lengths = np.fromiter(map(len, words), dtype=np.uint64, count=n)
        self._shift = np.power(np.uint64(_BASE), lengths)  # B^len(word), wrapping mod 2^64 like the hash
        self._cum = np.concatenate(([0], np.cumsum(lengths.astype(np.int64)))).tolist()

    def _sequence_hashes(self, n: int) -> np.ndarray:
        """Hash of the word sequence starting at each position (mixing, so word order matters)."""
        k = max(m for m in self._seq if m <= n)
        h, ids = self._seq[k], self._seq[1]
        while k < n:
            h = ((h[:-1] ^ (h[:-1] >> self._SHIFT)) * self._MUL) + ids[k:]
            k += 1
            self._seq[k] = h
        return h

    def _text_hashes(self, n: int) -> np.ndarray:
        """Polynomial hash of the n words concatenated, at each position: H(a + b) = H(a) * B^len(b) + H(b)."""
        k = max(m for m in self._text if m <= n)
        h, single = self._text[k], self._text[1]
        while k < n:
            h = h[:-1] * self._shift[k:] + single[k:]
            k += 1
            self._text[k] = h
        return h

    def top_chars(self, n: int) -> int:
        """Characters covered by the most frequent n-gram (joined with spaces) times its count; on ties the
        n-gram seen first wins, as with ``Counter.most_common``."""
        _, first, counts = np.unique(self._sequence_hashes(n), return_index=True, return_counts=True)
        top = int(counts.max())
        pos = int(first[counts == top].min())
        return (self._cum[pos + n] - self._cum[pos] + n - 1) * top

    def repeated_chars(self, n: int) -> int:
        """Characters in repeated n-grams, scanning left to right and jumping past each repeat (Gopher).

        Only n-grams occurring more than once can be repeats, so the scan visits just those positions: the
        positions in between would enter the seen set without ever being looked up again.
        """
        _, groups, counts = np.unique(self._text_hashes(n), return_inverse=True, return_counts=True)
        if len(counts) == len(groups):
            return 0
        positions = np.flatnonzero(counts[groups] > 1)
        cum, seen, repeated, next_free = self._cum, set(), 0, 0
        for pos, group in zip(positions.tolist(), groups[positions].tolist(), strict=True):
            if pos < next_free:
                continue
            if group in seen:
                repeated += cum[pos + n] - cum[pos]
                next_free = pos + n
            else:
                seen.add(group)
                next_free = pos + 1
        return repeated


def _check_ngram_rules(config: object, name: str) -> tuple[tuple[int, float], ...]:
    rules = tuple((int(n), float(frac)) for n, frac in getattr(config, name))
    for n, frac in rules:
        if n < 1 or not 0 <= frac <= 1:
            raise ValueError(f"{type(config).__name__}.{name}: need n >= 1 and a fraction in [0, 1], got ({n}, {frac})")
    return rules


@dataclass
class GopherRepetitionConfig:
    """Gopher's repetition thresholds (fractions of lines, paragraphs, and of characters)."""

    dup_line_frac: float | None = 0.3
    dup_para_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    dup_para_char_frac: float | None = 0.2
    top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    dup_n_grams: tuple[tuple[int, float], ...] = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))

    def __post_init__(self) -> None:
        check_fraction(
            self, "dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac", optional=True
        )
        self.top_n_grams = _check_ngram_rules(self, "top_n_grams")
        self.dup_n_grams = _check_ngram_rules(self, "dup_n_grams")


class GopherRepetitionFilter(RuleFilter):
    """Drops repetitive documents: repeated lines or paragraphs, a dominant phrase, many repeated n-grams."""

    name = "gopher_repetition"

    def __init__(self, config: GopherRepetitionConfig | None = None) -> None:
        self.config = config or GopherRepetitionConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name, text = self.config, self.name, view.text
        if not text:
            return f"{name}:empty", "empty text"
        n_chars = len(text)
        paragraphs = _PARAGRAPH_BREAK.split(text.strip())
        dups, dup_chars = _duplicates(paragraphs)
        signals["dup_para_frac"] = dups / len(paragraphs)
        if c.dup_para_frac is not None and dups / len(paragraphs) > c.dup_para_frac:
            return _rejection(name, "dup_para_frac", "dup_para_frac", dups / len(paragraphs), ">", c.dup_para_frac)
        if c.dup_para_char_frac is not None and dup_chars / n_chars > c.dup_para_char_frac:
            return _rejection(name, "dup_para_char_frac", "dup_para_char_frac", dup_chars / n_chars, ">",
                              c.dup_para_char_frac)
        lines = _LINE_BREAKS.split(text)
        dups, dup_chars = _duplicates(lines)
        signals["dup_line_frac"] = dups / len(lines)
        if c.dup_line_frac is not None and dups / len(lines) > c.dup_line_frac:
            return _rejection(name, "dup_line_frac", "dup_line_frac", dups / len(lines), ">", c.dup_line_frac)
        if c.dup_line_char_frac is not None and dup_chars / n_chars > c.dup_line_char_frac:
            return _rejection(name, "dup_line_char_frac", "dup_line_char_frac", dup_chars / n_chars, ">",
                              c.dup_line_char_frac)
        words = view.words
        ngrams = _WordNgrams(words)
        for n, threshold in c.top_n_grams:
            if len(words) < n:
                continue
            frac = ngrams.top_chars(n) / n_chars
            if frac > threshold:
                return _rejection(name, f"top_{n}_gram", f"top_{n}_gram_char_frac", frac, ">", threshold)
        for n, threshold in c.dup_n_grams:
            frac = (ngrams.repeated_chars(n) if len(words) >= n else 0) / n_chars
            if frac > threshold:
                return _rejection(name, f"dup_{n}_gram", f"dup_{n}_gram_char_frac", frac, ">", threshold)
        return None


# --------------------------------------------------------------------------------------------------------
# C4 (Raffel et al. 2020), as in DataTrove 0.10 (line mode)
# --------------------------------------------------------------------------------------------------------

_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


def _sentence_count(line: str) -> int:
    """Sentences spaCy's sentencizer finds in ``line``: a new one starts at the first non-punctuation token
    after a sentence-final mark."""
    count, after_terminal = 1, False
    for token in chain.from_iterable(map(_CHUNK_TOKENS.__getitem__, line.split())):
        if token in _TERMINALS:
            after_terminal = True
        elif after_terminal and not _IS_PUNCT[token]:
            count += 1
            after_terminal = False
    return count


@dataclass
class C4QualityConfig:
    """C4's rules over lines ending in terminal punctuation with enough words (None disables a count).

    ``mask_latex`` (math domain) measures :func:`mask_latex`'s view, whose lines are paragraphs.
    """

    remove_citations: bool = True
    filter_no_terminal_punct: bool = True
    min_num_sentences: int | None = 5
    min_words_per_line: int | None = 3
    max_word_length: int | None = 1000
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True
    mask_latex: bool = False

    def __post_init__(self) -> None:
        check_non_negative(self, "min_num_sentences", "min_words_per_line", "max_word_length", optional=True)


class C4QualityFilter(RuleFilter):
    """Drops pages with fewer than 5 sentences in proper lines, placeholder text, or code (curly brackets).

    Decides only: the line removal C4 also performs belongs to :class:`C4LinesMapper` in L1.
    """

    name = "c4_quality"

    def __init__(self, config: C4QualityConfig | None = None) -> None:
        self.config = config or C4QualityConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name = self.config, self.name
        text = view.masked().text if c.mask_latex else view.text
        min_sentences = c.min_num_sentences or 0
        # once enough sentences are counted, only a doc-level rule could still change the decision
        doc_rules_apply = (c.filter_lorem_ipsum and "lorem ipsum" in text.lower()) or (
            c.filter_curly_bracket and "{" in text
        )
        sentences, kept_lines = 0, 0
        for raw in text.splitlines():
            line = raw.strip()
            words = line.split()
            too_long = c.max_word_length is not None and len(line) > c.max_word_length
            if too_long and max(map(len, words)) > c.max_word_length:
                continue
            if c.remove_citations and "[" in line:
                line = _CITATION.sub("", line)
            if c.filter_no_terminal_punct and (not line.endswith(_END_PUNCTUATION) or line.endswith("...")):
                continue
            if c.min_words_per_line is not None and len(words) < c.min_words_per_line:
                continue
            lowered = line.lower()
            if c.filter_lorem_ipsum and "lorem ipsum" in lowered:
                return f"{name}:lorem_ipsum", "a kept line contains 'lorem ipsum'"
            if c.filter_javascript and "javascript" in lowered:
                continue
            if c.filter_curly_bracket and "{" in line:
                return f"{name}:curly_bracket", "a kept line contains '{'"
            if c.filter_policy and any(p in lowered for p in POLICY_SUBSTRINGS):
                continue
            kept_lines += 1
            if sentences < min_sentences:
                sentences += _sentence_count(line)
            elif not doc_rules_apply:
                break
        signals["sentences"] = sentences
        if sentences < min_sentences:
            return _rejection(name, "too_few_sentences", "sentences", sentences, "<", min_sentences)
        return None


# --------------------------------------------------------------------------------------------------------
# FineWeb (Penedo et al. 2024), as in DataTrove 0.10
# --------------------------------------------------------------------------------------------------------


@dataclass
class FineWebQualityConfig:
    """FineWeb's line-level rules: terminal punctuation, short lines, duplicated lines, list-like pages.

    ``mask_latex`` (math domain) measures :func:`mask_latex`'s view, whose lines are paragraphs.
    """

    line_punct_thr: float | None = 0.12
    line_punct_exclude_zero: bool = False
    short_line_thr: float | None = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float | None = 0.01
    new_line_ratio: float | None = 0.3
    stop_chars: str = TERMINAL_PUNCTUATION
    mask_latex: bool = False

    def __post_init__(self) -> None:
        check_fraction(self, "line_punct_thr", "short_line_thr", "char_duplicates_ratio", optional=True)
        check_non_negative(self, "short_line_length", "new_line_ratio", optional=True)
        if self.line_punct_thr is not None and not self.stop_chars:
            raise ValueError("FineWebQualityConfig.stop_chars must not be empty when line_punct_thr is set")


class FineWebQualityFilter(RuleFilter):
    """Drops pages made of unpunctuated, short or duplicated lines, or with more lines than words allow."""

    name = "fineweb_quality"

    def __init__(self, config: FineWebQualityConfig | None = None) -> None:
        self.config = config or FineWebQualityConfig()
        self._stop_chars = frozenset(self.config.stop_chars)

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name = self.config, self.name
        if c.mask_latex:
            view = view.masked()
        text = view.text
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return f"{name}:empty", "no non-blank line"
        stop = self._stop_chars
        punct = sum(1 for line in lines if line[-1] in stop) / len(lines)
        signals["line_punct_ratio"] = punct
        if c.line_punct_thr is not None and punct < c.line_punct_thr and not (punct == 0 and c.line_punct_exclude_zero):
            return _rejection(name, "line_punct_ratio", "line_punct_ratio", punct, "<", c.line_punct_thr)
        short = sum(1 for line in lines if len(line) <= c.short_line_length) / len(lines)
        signals["short_line_ratio"] = short
        if c.short_line_thr is not None and short > c.short_line_thr:
            return _rejection(name, "short_line_ratio", "short_line_ratio", short, ">", c.short_line_thr)
        dup = _duplicates(lines)[1] / (len(text) - text.count("\n"))
        signals["char_dup_ratio"] = dup
        if c.char_duplicates_ratio is not None and dup > c.char_duplicates_ratio:
            return _rejection(name, "char_dup_ratio", "char_dup_ratio", dup, ">", c.char_duplicates_ratio)
        if c.new_line_ratio is not None:
            ratio = text.count("\n") / len(view.words)
            signals["newline_per_word"] = ratio
            if ratio > c.new_line_ratio:
                return _rejection(name, "list_ratio", "newline_per_word", ratio, ">", c.new_line_ratio)
        return None


# --------------------------------------------------------------------------------------------------------
# Chinese
# --------------------------------------------------------------------------------------------------------

_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U0003134f]")
_ZH_PUNCT = re.compile("[，。！？；：、“”‘’（）《》【】「」『』…—·～,.!?;:'\"()\\[\\]]")


@dataclass
class ChineseQualityConfig:
    """Character-based rules for Chinese web text (Chinese has no spaces, so counts are of characters).

    The duplicate-line thresholds are Gopher's; the others have no canonical published values and are set
    loose enough to keep 90%+ of real Chinese news articles (shared data, magic-html-zh) while dropping
    non-Chinese pages, unpunctuated keyword lists and repeated-phrase spam.
    """

    min_chars: int | None = 50
    min_cjk_ratio: float | None = 0.3
    min_punct_ratio: float | None = 0.01
    max_punct_ratio: float | None = 0.3
    dup_line_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    char_ngram: int = 10
    max_dup_char_ngram_frac: float | None = 0.3

    def __post_init__(self) -> None:
        check_non_negative(self, "min_chars", optional=True)
        check_fraction(self, "min_cjk_ratio", "min_punct_ratio", "max_punct_ratio", "dup_line_frac",
                       "dup_line_char_frac", "max_dup_char_ngram_frac", optional=True)
        check_order(self, "min_punct_ratio", "max_punct_ratio", optional=True)
        check_at_least_one(self, "char_ngram")


class ChineseQualityFilter(RuleFilter):
    """Drops Chinese pages that are too short, mostly not Chinese, unpunctuated lists, or repetitive."""

    name = "zh_quality"

    def __init__(self, config: ChineseQualityConfig | None = None) -> None:
        self.config = config or ChineseQualityConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name = self.config, self.name
        compact = "".join(view.text.split())
        n = len(compact)
        signals["chars"] = n
        if c.min_chars is not None and n < c.min_chars:
            return _rejection(name, "char_count", "chars", n, "<", c.min_chars)
        if not n:
            return f"{name}:char_count", "no visible character"
        cjk = (n - len(_CJK.sub("", compact))) / n
        signals["cjk_ratio"] = cjk
        if c.min_cjk_ratio is not None and cjk < c.min_cjk_ratio:
            return _rejection(name, "cjk_ratio", "cjk_ratio", cjk, "<", c.min_cjk_ratio)
        punct = (n - len(_ZH_PUNCT.sub("", compact))) / n
        signals["punct_ratio"] = punct
        if c.min_punct_ratio is not None and punct < c.min_punct_ratio:
            return _rejection(name, "punct_ratio", "punct_ratio", punct, "<", c.min_punct_ratio)
        if c.max_punct_ratio is not None and punct > c.max_punct_ratio:
            return _rejection(name, "punct_ratio", "punct_ratio", punct, ">", c.max_punct_ratio)
        lines = [s for s in (line.strip() for line in view.text.split("\n")) if s]
        dups, dup_chars = _duplicates(lines)
        signals["dup_line_frac"] = dups / len(lines)
        if c.dup_line_frac is not None and dups / len(lines) > c.dup_line_frac:
            return _rejection(name, "dup_line_frac", "dup_line_frac", dups / len(lines), ">", c.dup_line_frac)
        if c.dup_line_char_frac is not None and dup_chars / n > c.dup_line_char_frac:
            return _rejection(name, "dup_line_char_frac", "dup_line_char_frac", dup_chars / n, ">",
                              c.dup_line_char_frac)
        if c.max_dup_char_ngram_frac is not None and n >= c.char_ngram:
            k = c.char_ngram
            total = n - k + 1
            distinct = len(set(map(compact.__getitem__, map(slice, range(total), range(k, n + 1)))))
            frac = 1 - distinct / total
            signals[f"dup_char_{k}_gram_frac"] = frac
            if frac > c.max_dup_char_ngram_frac:
                return _rejection(name, f"dup_char_{k}_gram", f"dup_char_{k}_gram_frac", frac, ">",
                                  c.max_dup_char_ngram_frac)
        return None


# --------------------------------------------------------------------------------------------------------
# Code
# --------------------------------------------------------------------------------------------------------

# substrings of the lowercased first lines; "generated by" only as a comment's first words, since prose such as
# "tables generated by pgen" describes other files
AUTOGENERATED_MARKERS = (
    "auto-generated", "autogenerated", "automatically generated", "generated automatically", "do not edit",
    "code generated", "this file is generated", "this file was generated", "file generated by", "# generated by",
    "// generated by", "/* generated by", "-- generated by",
)


@dataclass
class CodeQualityConfig:
    """Codex / The Stack rules: line lengths, alphanumeric fraction, size (1 MiB), and generated-file markers
    looked for in the first ``header_lines`` lines, where generators write them."""

    max_line_length: int | None = 1000
    max_mean_line_length: float | None = 100
    min_alnum_fraction: float | None = 0.25
    max_bytes: int | None = 1_048_576
    autogenerated_markers: tuple[str, ...] = AUTOGENERATED_MARKERS
    header_lines: int = 5

    def __post_init__(self) -> None:
        self.autogenerated_markers = tuple(m.lower() for m in self.autogenerated_markers)
        check_non_negative(
            self, "max_line_length", "max_mean_line_length", "max_bytes", "header_lines", optional=True
        )
        check_fraction(self, "min_alnum_fraction", optional=True)


class CodeQualityFilter(RuleFilter):
    """Drops source files that are generated, minified (very long lines), data blobs, or too large."""

    name = "code_quality"

    def __init__(self, config: CodeQualityConfig | None = None) -> None:
        self.config = config or CodeQualityConfig()

    def evaluate(self, view: DocView, signals: dict[str, Any]) -> Verdict:
        c, name, text = self.config, self.name, view.text
        if c.max_bytes is not None and len(text) > c.max_bytes // 4:
            n_bytes = len(text.encode("utf-8", "surrogatepass"))
            if n_bytes > c.max_bytes:
                return _rejection(name, "too_large", "bytes", n_bytes, ">", c.max_bytes)
        header = "\n".join(text.split("\n", c.header_lines)[: c.header_lines]).lower()
        for marker in c.autogenerated_markers:
            if marker in header:
                return f"{name}:auto_generated", f"header contains {marker!r}"
        lines = text.split("\n")
        lengths = list(map(len, lines))
        longest, mean = max(lengths), sum(lengths) / len(lengths)
        signals.update(max_line_length=longest, mean_line_length=mean)
        if c.max_line_length is not None and longest > c.max_line_length:
            return _rejection(name, "max_line_length", "max_line_length", longest, ">", c.max_line_length)
        if c.max_mean_line_length is not None and mean > c.max_mean_line_length:
            return _rejection(name, "mean_line_length", "mean_line_length", mean, ">", c.max_mean_line_length)
        if c.min_alnum_fraction is not None and text:
            alnum = sum(map(str.isalnum, text)) / len(text)
            signals["alnum_fraction"] = alnum
            if alnum < c.min_alnum_fraction:
                return _rejection(name, "alnum_fraction", "alnum_fraction", alnum, "<", c.min_alnum_fraction)
        return None


# --------------------------------------------------------------------------------------------------------
# Grouping and per-domain defaults
# --------------------------------------------------------------------------------------------------------


class FilterGroup(Filter):
    """Runs rule filters document by document over one shared :class:`DocView` (one tokenization).

    A rejected document names the member filter that rejected it as its ``stage``; ``counts`` holds the
    rejections per member.
    """

    def __init__(self, name: str, filters: Sequence[RuleFilter]) -> None:
        self.name = name
        self.filters = list(filters)
        self.counts: dict[str, int] = dict.fromkeys((f.name for f in self.filters), 0)

    def check(self, doc: Doc) -> Verdict:
        view = DocView(doc["text"])
        for f in self.filters:
            verdict = f.check_view(doc, view)
            if verdict is not None:
                return verdict
        return None

    def process(self, docs: list[Doc]) -> StepResult:
        kept, rejected = [], []
        for doc in docs:
            view = DocView(doc["text"])
            for f in self.filters:
                verdict = f.check_view(doc, view)
                if verdict is not None:
                    self.counts[f.name] += 1
                    rejected.append(reject(doc, f.name, *verdict))
                    break
            else:
                kept.append(doc)
        return StepResult(kept, rejected)


@dataclass
class _Spec:
    cls: type[RuleFilter]
    config: Any


def _domain_specs(domain: str) -> list[_Spec]:
    """Filters and their per-domain configs, cheapest and most selective first."""
    if domain == "en":
        return [
            _Spec(LengthFilter, LengthConfig()),
            _Spec(GopherQualityFilter, GopherQualityConfig()),
            _Spec(C4QualityFilter, C4QualityConfig()),
            _Spec(FineWebQualityFilter, FineWebQualityConfig()),
            _Spec(GopherRepetitionFilter, GopherRepetitionConfig()),
        ]
    if domain == "math":
        # the web rules on the LaTeX-aware view (formulas as words, paragraphs as lines), braces allowed as
        # LaTeX; repetition is measured on the raw text, where distinct formulas stay distinct
        return [
            _Spec(LengthFilter, LengthConfig()),
            _Spec(GopherQualityFilter, GopherQualityConfig(mask_latex=True)),
            _Spec(C4QualityFilter, C4QualityConfig(filter_curly_bracket=False, mask_latex=True)),
            _Spec(FineWebQualityFilter, FineWebQualityConfig(mask_latex=True)),
            _Spec(GopherRepetitionFilter, GopherRepetitionConfig()),
        ]
    if domain == "zh":
        return [_Spec(LengthFilter, LengthConfig()), _Spec(ChineseQualityFilter, ChineseQualityConfig())]
    if domain == "code":
        # short source files rarely contain '.' or ',': only the size bounds apply
        return [_Spec(LengthFilter, LengthConfig(short_doc_chars=None)), _Spec(CodeQualityFilter, CodeQualityConfig())]
    raise ValueError(f"unknown domain {domain!r}; expected one of en, zh, math, code")


def default_filters(domain: str, overrides: dict[str, dict[str, Any]] | None = None) -> list[Filter]:
    """The L1 rule filters for ``domain`` as one :class:`FilterGroup` (one tokenization per document).

    ``overrides`` maps a filter name to config fields to change, e.g. ``{"gopher_quality":
    {"min_doc_words": 30}}``; unknown names or fields raise ValueError before any document is touched.
    """
    specs = _domain_specs(domain)
    by_name = {spec.cls.name: spec for spec in specs}
    for filter_name, changes in (overrides or {}).items():
        if filter_name not in by_name:
            raise ValueError(f"unknown filter {filter_name!r} for domain {domain!r}; known: {sorted(by_name)}")
        spec = by_name[filter_name]
        known = {f.name for f in fields(spec.config)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)} for {filter_name!r}; known: {sorted(known)}")
        spec.config = replace(spec.config, **changes)
    return [FilterGroup(f"{domain}_rules", [spec.cls(spec.config) for spec in specs])]
