"""L1 text mappers: invisible characters, Unicode spaces and normalization, boilerplate lines, blank-line runs.

After UltraData-Math's released cleaner. Each mapper does one thing, is a no-op (returns the same string) on
text it has nothing to do with, and checks that cheaply first. Line removals are conservative: they delete only
whole, short lines that match a known boilerplate shape, never lines holding LaTeX (``$`` or ``\\``), so prose
and formulas survive.
"""

from __future__ import annotations

import re
import unicodedata

from tier_assets.curation.pipeline import Doc, Mapper


class InvisibleCharsMapper(Mapper):
    """Deletes zero-width, bidi-control, soft-hyphen and C0/C1 control characters (tab, newline and CR kept).

    They render as nothing yet split words for tokenizers, dedup and search. Run :class:`UnicodeSpacesMapper`
    first to keep the line-breaking controls (VT, FF, NEL) as newlines instead of deleting them.
    """

    name = "invisible_chars"
    _PATTERN = re.compile(
        "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
        "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]+"
    )

    def map_text(self, text: str, doc: Doc) -> str:
        return self._PATTERN.sub("", text) if self._PATTERN.search(text) else text


class PrivateUseMapper(Mapper):
    """Deletes Private Use Area characters: icon-font glyphs and broken PDF extractions with no shared meaning."""

    name = "private_use"
    _PATTERN = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]+")

    def map_text(self, text: str, doc: Doc) -> str:
        return self._PATTERN.sub("", text) if self._PATTERN.search(text) else text


class UnicodeSpacesMapper(Mapper):
    """NBSP, ideographic space (U+3000) and the other Unicode spaces become ' '; VT, FF, NEL and the Unicode
    line/paragraph separators become '\\n'. Words then split, and lines break, the same way everywhere."""

    name = "unicode_spaces"
    _SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
    _BREAKS = re.compile("[\x0b\x0c\x85\u2028\u2029]")

    def map_text(self, text: str, doc: Doc) -> str:
        if self._SPACES.search(text):
            text = self._SPACES.sub(" ", text)
        if self._BREAKS.search(text):
            text = self._BREAKS.sub("\n", text)
        return text


class NFCMapper(Mapper):
    """Unicode NFC, so that canonically equal strings (precomposed vs combining accents) compare equal."""

    name = "nfc"

    def map_text(self, text: str, doc: Doc) -> str:
        return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


class BlankLinesMapper(Mapper):
    """Collapses runs of two or more blank (or whitespace-only) lines into one blank line.

    LaTeX environments and ``$$...$$`` blocks are left exactly as they are.
    """

    name = "blank_lines"
    _BLANKS = re.compile(r"\n(?:[ \t\r]*\n){2,}")
    _BLANKS_OUTSIDE_LATEX = re.compile(r"(\\begin\{([^}\n]{1,40})\}.*?\\end\{\2\}|\$\$.+?\$\$)|" + _BLANKS.pattern, re.DOTALL)

    def map_text(self, text: str, doc: Doc) -> str:
        if "\\begin{" not in text and "$$" not in text:
            return self._BLANKS.sub("\n\n", text)
        return self._BLANKS_OUTSIDE_LATEX.sub(lambda m: m.group(1) or "\n\n", text)


def _line_remover(alternatives: str, max_line_chars: int) -> re.Pattern[str]:
    """A pattern matching whole lines (with their newline) of at most ``max_line_chars`` characters, without
    LaTeX (``$`` or ``\\``), that consist of one of ``alternatives`` (case-insensitive)."""
    return re.compile(
        rf"^(?=[^\n$\\]{{0,{max_line_chars}}}(?:\n|\Z))[ \t]*(?:{alternatives})[ \t\r]*(?:\n|\Z)",
        re.IGNORECASE | re.MULTILINE,
    )


_ARROWS = r"[«»‹›<>←→|·•:\-–—.… \t]*"
_NAV_ITEM = r"[^|\n.!?]{1,30}"
_NAV_WORDS = (
    r"home|about(?: us)?|contact(?: us)?|log ?in|sign (?:in|up)|register|search|menu|privacy|terms|faq|help|blog"
    r"|news|shop|careers|site ?map"
)
_SOCIAL = r"facebook|twitter|linkedin|pinterest|reddit|whatsapp|tumblr|telegram|instagram|youtube|google\+?|e-?mail"
_ENGLISH_BOILERPLATE = [
    # pagination and article navigation
    r"page \d+ (?:of|/) \d+",
    rf"{_ARROWS}(?:previous|prev|next|older|newer)(?: (?:article|post|page|story|entry|entries|posts|articles"
    rf"|stories|item|chapter|slide|image|photo))?{_ARROWS}",
    rf"{_ARROWS}(?:previous|prev|next) (?:article|post|story|entry)[ \t]*[:：»›>\-–—][ \t]*[^\n]{{1,100}}",
    rf"(?:«|‹|prev(?:ious)?)[ \t]*\d+(?:[ \t]+\d+){{0,11}}(?:[ \t]*…[ \t]*\d+)?[ \t]*(?:next|»|›)?{_ARROWS}",
    rf"\d+(?:[ \t]+\d+){{1,11}}(?:[ \t]*…[ \t]*\d+)?[ \t]*(?:next|»|›){_ARROWS}",
    # buttons and notices
    r"click here(?: to| for)?[^\n]{0,60}",
    rf"(?:print|e-?mail|share|save|bookmark|tweet|pin it)(?: this)?(?: (?:article|page|story|post|recipe))?{_ARROWS}",
    rf"(?:(?:share|post|tweet|pin)(?: this)?(?: (?:on|to|via|with))? )?(?:{_SOCIAL}){_ARROWS}",
    rf"(?:(?:share(?: this)?|tweet|pin it|like|{_SOCIAL})[ \t|·•,/]*){{2,10}}",
    r"(?:back|return|scroll|go) to (?:the )?top(?: of (?:the )?page)?[^\w\n]*|top of (?:the )?page[^\w\n]*",
    r"skip to (?:the )?(?:main )?(?:content|navigation|menu)[^\w\n]*|toggle navigation|jump to navigation",
    r"advertisement(?:s)?(?:[ \t]*[-–—:][ \t]*(?:continue|scroll) (?:reading|down) below)?[^\w\n]*",
    r"(?:story|article) continues below(?: advertisement)?[^\w\n]*|continue reading(?: below| the main story)?[^\w\n]*",
    r"sponsored(?: content| links?)?|read more[^\w\n]*|(?:load|show|view|see) more(?: comments| stories)?[^\w\n]*",
    r"(?:follow us|like us|find us)(?: on [\w ,&]{1,60})?[^\w\n]*",
    r"(?:related (?:articles|posts|stories|content)|you (?:may|might) also like|recommended for you)[^\w\n]*",
    r"(?:leave a (?:comment|reply)|no comments(?: yet)?|\d+ comments?|comments? \(\d+\))[^\w\n]*",
    r"(?:sign (?:in|up)|log ?in|log ?out|register|subscribe|search|menu|site ?map)[^\w\n]*",
    r"(?:accept(?: all)?|reject(?: all)?|manage) cookies[^\w\n]*|cookie (?:settings|preferences)[^\w\n]*",
    # copyright footers, breadcrumbs, nav bars
    r"(?:copyright[ \t]*)?(?:©|\(c\))[^\n]*|copyright[ \t]+(?:\d{4}|©)[^\n]*|all rights reserved[^\w\n]*",
    r"(?:you are here[ \t]*:[ \t]*)?home[ \t]*(?:>|»|›|/|→|::)[ \t]*[^\n]*",
    rf"(?={_NAV_ITEM}\|)(?=[^\n]*\b(?:{_NAV_WORDS})\b)(?:{_NAV_ITEM}\|){{2,}}{_NAV_ITEM}",
    r"tags?[ \t]*:[ \t]*[^\n.!?]{1,100}",
]
_CHINESE_BOILERPLATE = [
    r"(?:上一篇|下一篇|上一页|下一页|上一章|下一章|上一条|下一条)[ \t]*[:：]?[^\n]{0,80}",
    r"(?:首页|尾页|末页)(?:[ \t]*[|/]?[ \t]*(?:上一页|下一页|尾页|末页|\d+))*",
    r"(?:第[ \t]*\d+[ \t]*页[ \t]*)?[/／]?[ \t]*共[ \t]*\d+[ \t]*页[^\n]{0,20}",
    r"(?:返回|回到)(?:顶部|首页|列表|上一页|栏目)?[^\w\n]*",
    r"点击(?:这里|此处|查看|进入|下载|阅读)[^\n]{0,40}",
    r"分享(?:到|至)[ \t]*[:：]?[^\n]{0,60}",
    r"[^\n]{0,60}版权所有[^\n]{0,60}",
    r"(?:当前位置|您的位置|你的位置|所在位置|当前位置为)[ \t]*[:：][^\n]*",
    r"首页[ \t]*(?:>|＞|»|›|/|→|-)[ \t]*[^\n]*",
    r"(?:打印本页|关闭窗口|打印|关闭|收藏本页|加入收藏|设为首页|字号[ \t]*[:：]?[ \t]*(?:大|中|小|[ \t])*)[^\w\n]*",
    r"(?:微信)?(?:扫一扫|扫描二维码|长按二维码|长按识别二维码)[^\n]{0,40}",
    r"(?:相关阅读|相关文章|相关新闻|推荐阅读|热门文章|猜你喜欢|关注我们)[^\w\n]*",
    r"[^\n]{0,40}(?:ICP备|ICP证|公网安备)[^\n]{0,60}",
    r"(?:责任编辑|编辑|来源)[ \t]*[:：][ \t]*\S{1,20}",
    r"(?:登录|注册|登录[ \t]*\|[ \t]*注册)[^\w\n]*",
]


class BoilerplateLinesMapper(Mapper):
    """Deletes whole short lines that are page furniture, in English and Chinese: navigation and pagination
    ("Page 1 of 3", "Previous Article", "Next »", 上一篇, 下一篇), buttons ("Click here", "Print this article",
    "Back to Top", 返回顶部, 点击这里), ads ("Advertisement – Continue Reading Below"), share bars ("Share on
    Facebook", "Tweet", 分享到), copyright footers (版权所有), breadcrumbs ("Home > ...", 首页 > ...) and nav bars.

    Only lines of at most ``max_line_chars`` characters matching one shape in full are removed, so a sentence
    that merely starts like one survives.
    """

    name = "boilerplate_lines"

    def __init__(self, max_line_chars: int = 120) -> None:
        if max_line_chars < 1:
            raise ValueError(f"max_line_chars must be >= 1, got {max_line_chars}")
        self.max_line_chars = max_line_chars
        self._pattern = _line_remover("|".join(_ENGLISH_BOILERPLATE + _CHINESE_BOILERPLATE), max_line_chars)

    def map_text(self, text: str, doc: Doc) -> str:
        return self._pattern.sub("", text)


POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_JAVASCRIPT_NOTICE = re.compile(
    r"(?:enabl\w*|turn\w* on|activat\w*|allow)[ \t]+(?:your[ \t]+)?javascript"
    r"|javascript[ \t]+(?:is[ \t]+|must[ \t]+be[ \t]+|to[ \t]+be[ \t]+)?(?:not[ \t]+)?(?:disabled|enabled|turned"
    r" off|required|switched off|support)|requires?[ \t]+javascript|(?:does not|doesn't)[ \t]+support[ \t]+javascript"
)


class C4LinesMapper(Mapper):
    """C4's line rules, kept conservative: deletes short lines that ask for JavaScript ("JavaScript must be
    enabled") or carry cookie/policy notices ("terms of use", "privacy policy", "cookie policy", "uses
    cookies"). C4 deletes such lines at any length; here lines longer than ``max_line_chars`` survive, as a
    paragraph that discusses a privacy policy is prose. Pages with "lorem ipsum" are dropped whole by
    :class:`~tier_assets.curation.l1.filters.C4QualityFilter` rather than edited here.
    """

    name = "c4_lines"

    def __init__(self, max_line_chars: int = 300) -> None:
        if max_line_chars < 1:
            raise ValueError(f"max_line_chars must be >= 1, got {max_line_chars}")
        self.max_line_chars = max_line_chars

    def _is_notice(self, line: str) -> bool:
        if len(line) > self.max_line_chars or "$" in line or "\\" in line:
            return False
        lowered = line.lower()
        return any(p in lowered for p in POLICY_PHRASES) or bool(_JAVASCRIPT_NOTICE.search(lowered))

    def map_text(self, text: str, doc: Doc) -> str:
        lowered = text.lower()
        if "javascript" not in lowered and not any(p in lowered for p in POLICY_PHRASES):
            return text
        lines = text.split("\n")
        kept = [line for line in lines if not self._is_notice(line)]
        return text if len(kept) == len(lines) else "\n".join(kept)


def default_mappers(domain: str) -> list[Mapper]:
    """The L1 mappers for ``domain``, in order (spaces before invisible characters, blank lines last).

    Code gets only the changes that cannot alter what a program means to a reader: invisible characters
    and NFC. Its lines are never removed and its spacing is kept.
    """
    if domain == "code":
        return [InvisibleCharsMapper(), NFCMapper()]
    if domain in ("en", "zh", "math"):
        return [
            UnicodeSpacesMapper(),
            InvisibleCharsMapper(),
            PrivateUseMapper(),
            NFCMapper(),
            BoilerplateLinesMapper(),
            C4LinesMapper(),
            BlankLinesMapper(),
        ]
    raise ValueError(f"unknown domain {domain!r}; expected one of en, zh, math, code")
