"""DataTrove 0.10's English word tokenizer, ported, and the per-token facts the rule filters measure.

DataTrove splits English words with spaCy 3.x's rules (prefixes, suffixes, infixes, the URL match, special
cases); this port gives the same tokens without depending on spaCy, memoized per whitespace-separated chunk
(docs/decisions.md, "L1 rule filters").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any


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


class Memo(dict):
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


CHUNK_TOKENS = Memo(_tokenize_chunk, 200_000)


def split_words(text: str) -> list[str]:
    """Word tokens of ``text`` as DataTrove 0.10 gets them for English (spaCy rules, whitespace dropped)."""
    return list(chain.from_iterable(map(CHUNK_TOKENS.__getitem__, text.split())))


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
TERMINALS = frozenset(TERMINAL_PUNCTUATION)

# per-token facts, memoized: the token vocabulary is small next to the token stream
TOKEN_MEMO_LIMIT = 100_000
IS_WORD = Memo(lambda t: any(c not in _SYMBOLS for c in t), TOKEN_MEMO_LIMIT)
WORD_LEN = Memo(lambda t: len(t) if IS_WORD[t] else 0, TOKEN_MEMO_LIMIT)
HAS_ALPHA = Memo(lambda t: any(c.isalpha() for c in t), TOKEN_MEMO_LIMIT)
IS_PUNCT = Memo(lambda t: all(unicodedata.category(c).startswith("P") for c in t), TOKEN_MEMO_LIMIT)
