"""L4 knowledge checks: is a candidate item knowledge a reader can rely on, out of its page?

The evidence check proves an item quotes its source; these rules judge the claim
itself. Each returns a failure (check name, detail) or None; ``knowledge_problems``
runs them cheapest first and an item that fails any goes to L4's rejected set as
``l4_check:<name>``:

* ``too_long``: longer than the cap (a paragraph is not one item);
* ``wrong_language``: Chinese in an en / math / code item, no Chinese in a zh item;
* ``fragment``: not a complete sentence (starts lower-case or with a participle,
  ends on a preposition or mid-clause, too short, unbalanced brackets);
* ``context``: the subject needs the page to be understood (a pronoun or
  deictic, "the word", a discourse connective such as "Then" or "However", a
  bare first name described as a person);
* ``time_relative``: "recently", "latest", "this year", ... with no year to anchor it;
* ``opinion``: first person, evaluative words, hedges;
* ``promotional``: calls to buy, click, call or visit.

Formulas (``$...$``, ``\\(...\\)``) are masked before the rules read a math item,
and mathematicians' "we call / we say / we define" is not first person.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tier_assets.curation.l4.extract import Item, plain_latex
from tier_assets.curation.l4.math_symbols import unintroduced
from tier_assets.curation.schema import HAN

MAX_ITEM_CHARS = 600
CHECK_STAGE = "l4_check"


@dataclass(frozen=True)
class CheckFailure:
    """Why a candidate is not a knowledge item: the check's name and what tripped it."""

    name: str
    detail: str

    @property
    def reason(self) -> str:
        return f"l4_check:{self.name}"


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------- English rules

_FORMULA = re.compile(r"\$\$.+?\$\$|\$[^$]+\$|\\\(.+?\\\)|\\\[.+?\\\]", re.DOTALL)
_MATH_WE = re.compile(r"\b(?:we|one)\s+(?:call|calls|say|says|define|defines|denote|denotes|write|writes|"
                      r"refer|speak|have|has|obtain|get|see|note|know|can|may|do|does)\b|\blet us\b|\blet's\b",
                      re.IGNORECASE)
# "I" only as a capital word ("i.e." is not first person)
_FIRST_PERSON = re.compile(r"\bI(?:'m|'ve|'d|'ll)?\b|\b(?:[Mm]e|[Mm]y|[Mm]ine|[Mm]yself|[Ww]e|[Ww]e're|[Ww]e've|[Uu]s|"
                           r"[Oo]ur|[Oo]urs|[Oo]urselves)\b")
_HEDGES = _words(r"I think|I believe|I guess|I feel|in my opinion|to me|probably|maybe|perhaps|arguably|"
                 r"seems?|seemingly|apparently|supposedly|kind of|sort of|I suppose|fairly|rather|somewhat|"
                 r"pretty much|a lot|should|ought to|must|need to|almost certainly|likely|possibly|reportedly|"
                 r"allegedly|believed to|believes?|what is said to be|is claimed|claims? that")
# hearsay: a claim someone reports ("..., prosecutors said"); math's "is said to be" defines, so prose only
_HEARSAY = _words(r"says|said|told|according to")
# a reference work does not address its reader ("you'll never mistake", "a larger payout to you")
_SECOND_PERSON = re.compile(r"\b(?:[Yy]ou|[Yy]our|[Yy]ours|[Yy]ourself|[Yy]ou're|[Yy]ou'll|[Yy]ou've|[Yy]ou'd)\b")
_EVALUATIVE = _words(r"superb|awesome|amazing|terrible|horrible|awful|stupid|ridiculous|idiotic|waste of time|"
                     r"fantastic|wonderful|incredible|brilliant|excellent|outstanding|lovely|gorgeous|beautiful|"
                     r"ugly|boring|disgusting|pathetic|worst|best|greatest|favou?rite|love|loves|hate|hates|"
                     r"cool|nice|perfect|must-have|must see|must-see|stunning|breathtaking|delicious|"
                     r"unbelievable|insane|crazy|sucks?|lame|bad|great|sleazy|highlight|elegant|obvious|"
                     r"important|key|critical|powerful|(?:the|its|their|our|’s|'s) most \w+|waste|"
                     r"one of the (?:largest|biggest|best|most|leading|top|greatest)|renowned|premier|"
                     r"leading(?! (?:cause|edge|coefficient|term|digit))|world-class|top-notch|high[- ]quality|"
                     r"innovative|impressive|crucial|the essential|recogni[sz]ed(?! by| as)|prestigious|iconic|adorable|joyful|energetic|"
                     r"memorable|serviceable|exciting|exhilarating|safer|easier|better(?! known)|worse|heck|"
                     r"number one|finest|ultimate|stupendous|spectacular|magnificent|charming|famous|prominent|"
                     r"popular(?! (?:vote|culture|music|sovereignty|front|science))|cornerstone|journey into")
_EVALUATIVE_MATH = _words(r"superb|awesome|amazing|beautiful|elegant|nice|cool|fantastic|terrible|horrible|stupid|"
                          r"ridiculous|boring|favou?rite|love|hate|waste of time|incredible|brilliant|lovely|"
                          r"gorgeous|stunning|obvious|obviously|clearly|trivially")
_PROMOTIONAL = _words(r"buy|buy now|order now|shop now|discount|discounts|on sale|free shipping|best price|"
                      r"lowest price|click here|click|call us|call now|contact us|subscribe|sign up|visit our|"
                      r"our products|our services|our company|our team|limited time|coupon|coupons|deals?|"
                      r"\d+% off|money back|guaranteed|hurry|don't miss|book now|special offer|register now|"
                      r"equal opportunity employer|competitive salar(?:y|ies)|payout|affordable|award[- ]winning|"
                      r"best[- ]selling|free trial|booking partner|official partner|exclusive offer|per month")
_URL = re.compile(r"https?://|www\.\w", re.IGNORECASE)
_TIME_RELATIVE = _words(r"recently|recent|latest|now|nowadays|currently|current|at present|presently|today|"
                        r"tonight|yesterday|tomorrow|this (?:year|month|week|season|spring|summer|autumn|fall|"
                        r"winter)|last (?:year|month|week|night)|next (?:year|month|week)|so far|to date|"
                        r"upcoming|soon|these days|at the moment|just announced|ago|nascent|for (?:years|decades)|"
                        r"in recent (?:years|months|decades)")
# what holds only for a while: a person's current post ("is the CEO of", "is a science reporter for"), an age,
# a share or a poll figure ("holds 74 percent of the market")
_ROLE_NOW = re.compile(r"^(?!(?:A|An|The|This|That|These|Those)\b)[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,3}\s+"
                       r"(?:is|are)\s+(?:the|an?|its|their)\s+(?:[\w.&-]+\s+){0,3}?(?:CEO|CFO|CTO|president|director|"
                       r"editor|chair(?:man|woman|person)?|manager|chief|minister|secretary|coach|captain|"
                       r"spokes(?:man|woman|person)|reporter|journalist|correspondent|professor|lecturer|teacher|anchor|"
                       r"executive|officer|owner|employee|intern|ambassador|governor|mayor|senator|leader)s?\b")
_AGE_OR_SHARE = re.compile(r"\b\d+[- ]years?[- ]old\b|\b\d+(?:\.\d+)?\s*(?:%|percent\b|per cent\b)\s+of\s+(?:the\s+)?"
                           r"(?:\w+\s+)?(?:market|vote|votes|voters|population|respondents|users|customers|sales|"
                           r"revenue|shares|households|adults|people)\b|\bmarket share\b", re.IGNORECASE)
_DATED = re.compile(r"\b(?:1[5-9]|20)\d\d\b|\b\d{1,2}(?:st|nd|rd|th)? century\b", re.IGNORECASE)
_CONTEXT_LEAD = re.compile(
    r"^(?:it|its|it's|this|that|these|those|he|she|they|them|his|her|their|here|there|such|the latter|the former|"
    r"the (?:word|term|phrase|name|above|following|previous|same|author|article|post|site|page|book|video|"
    r"story|show|film|movie|product|company|team|event|game|album|song|group|guy|man|woman|girl|boy|one)|"
    r"then|thus|hence|therefore|so|also|however|but|and|or|yet|still|moreover|furthermore|besides|since|"
    r"because|set|now|recall|note|finally|otherwise|another|other|an? (?:\w+ )?example|in the notation|"
    r"similarly|likewise|otherwise|instead|meanwhile|consequently|indeed|in (?:addition|contrast|fact|turn)|"
    r"as (?:a result|such|well)|for (?:example|instance)|same as|see|next|up next|though|if no|one may|"
    r"following|the following|below|above)\b", re.IGNORECASE)
# a subject that is an activity ("Speaking against oppression is", "Leaving a full-time employer means"): advice
# or a generalisation about doing something, not a term or an entity
_GERUND_CLAUSE = re.compile(r"^[A-Z][a-z]{3,}(?<![jq])ing\s+(?:a|an|the|more|less|against|directly|with|to|for|on|in|up|out|"
                            r"your|our|their|his|her|its|this|that|these|those|about|over|through|into|one's|"
                            r"someone|something|people|others)\b")
# an adverb inside the subject ("Common ghost sightings often refer to", "The find almost certainly means"): the
# extractor took a hedged or generalising clause for the subject
_SUBJECT_ADVERB = re.compile(r"(?<=\s)(?:often|also|always|usually|almost|certainly|still|just|even|never|sometimes|"
                            r"typically|generally|mostly|probably|perhaps|now)\b")  # lower case: not "Just Dance"
# references to the page's numbering or layout: "(\ref{sigma})", "Eq. (3)", "The decomposition (1)", "the above"
_PAGE_REFERENCE = re.compile(r"\\(?:eq)?ref\{|\bEq\.\s*\(|\b(?:the|this|that|these)\s+\w+\s+\(\d+\)|"
                             r"\bthe above\b|\babove (?:graph|figure|table|example|equation|properties)\b",
                             re.IGNORECASE)
_PERSON_NOUN = _words(r"teacher|student|mother|father|mom|dad|wife|husband|friend|girl|boy|man|woman|person|"
                      r"writer|blogger|designer|lover|fan|member|owner|mum|grandmother|grandfather|daughter|son|"
                      r"sister|brother|child|kid|nurse|coach|artist|photographer|player|reader|customer|"
                      r"part-time|full-time|stay-at-home|retired|graduate|lady|guy")
_FRAGMENT_LEAD = re.compile(r"^(?:[a-z](?![\w-]* (?:is|are) )|[A-Z]\w+ed (?:down|up|below|above|in|on|at|by|"
                            r"with|from|to|into|out|over|under)\b|(?:listed|shown|given|found|located|belonging|based|including|such as|"
                            r"according to|along with|in order to|due to|because|although|while|when|if|"
                            r"which|who|whose|where|whereas|unlike|like|as|with|without|from|to|by|of|for)\b)")
_DANGLING_END = _words(r"a|an|the|of|by|to|for|with|from|in|on|at|and|or|but|as|than|that|which|who|is|are|"
                       r"was|were|be|such|like|via|into|onto|about|including")
_SENTENCE_END = re.compile(r"[.!?;)\]\"'”’]$|\$$")
# "The first method is ...": a definite description of common nouns with no name or complement points back into
# the page ("The Ocean Planet is", "The disadvantage of SVMs is" and "The length of ... is called" do not)
_DEFINITE_LEAD = re.compile(r"^The\s+(?P<np>[a-z][\w-]*(?:\s+[a-z][\w-]*){0,4}?)\s+(?:X\s+)?(?:is|are|was|were|has|have)\b"
                            r"(?!\s+(?:called|known as|termed|defined))")
_QUOTES = (("“", "”"), ("「", "」"), ("(", ")"), ("（", "）"))


def _prose(text: str, domain: str) -> str:
    """The claim as the rules read it: formulas masked in math (so ``$x$`` reads as a noun), spaces collapsed."""
    if domain == "math":
        text = _FORMULA.sub(" X ", text)
    return " ".join(text.split())


def _first_match(pattern: re.Pattern[str], text: str) -> str | None:
    m = pattern.search(text)
    return m.group(0) if m else None


def check_too_long(text: str, domain: str, kind: str, max_chars: int = MAX_ITEM_CHARS) -> CheckFailure | None:
    if len(text) > max_chars:
        return CheckFailure("too_long", f"{len(text)} characters > {max_chars}")
    return None


def check_language(text: str, domain: str, kind: str) -> CheckFailure | None:
    han = len(HAN.findall(text))
    letters = sum(ch.isalpha() for ch in text) or 1
    if domain == "zh" and kind != "qa" and han == 0:
        return CheckFailure("wrong_language", "a zh item with no Chinese characters")
    if domain != "zh" and han / letters > 0.2:
        return CheckFailure("wrong_language", f"{han} Chinese characters in a {domain} item")
    return None


def _claim_en(text: str, kind: str) -> str:
    """The part of the item the sentence rules read: a Q&A's answer, a docstring item's summary."""
    if kind == "qa" and " A: " in text:
        return text.split(" A: ", 1)[1]
    return text


def check_fragment_en(text: str, kind: str, domain: str = "en") -> CheckFailure | None:
    claim = _claim_en(text, kind)
    words = claim.split()
    if len(words) < 4 and kind != "qa":
        return CheckFailure("fragment", f"{len(words)} words")
    if kind != "qa" and _FRAGMENT_LEAD.match(claim):
        return CheckFailure("fragment", f"starts with {claim.split()[0]!r}: no subject")
    if any(claim.count(a) != claim.count(b) for a, b in _QUOTES) or claim.count("[") != claim.count("]"):
        return CheckFailure("fragment", "unbalanced brackets or quotes")
    stripped = claim.rstrip()
    if stripped.endswith(":"):
        return CheckFailure("fragment", "ends with a colon: announces what it leaves out")
    if domain == "math":  # formulas and "1, 2, 3, ..." end math items; masked, they read as X
        return _math_fragment(stripped)
    if stripped.endswith(("…", "...", ",", "-", "–")):
        return CheckFailure("fragment", f"ends mid-clause: {stripped[-12:]!r}")
    last = re.sub(r"[.!?;:]+$", "", stripped).split()[-1:] if stripped else []
    if last and _DANGLING_END.fullmatch(last[0]):
        return CheckFailure("fragment", f"ends on {last[0]!r}")
    if kind != "qa" and not _SENTENCE_END.search(stripped):
        return CheckFailure("fragment", "no sentence-final punctuation")
    return None


_MATH_MARKUP_LEAD = re.compile(r"^\\(?:item|medskip|bigskip|smallskip|noindent|textbf|begin|end|section|"
                               r"subsection|paragraph|par)\b")
_MATH_OPEN_END = re.compile(r"\\begin\{[^}]*\}\s*$|\\\[\s*$|\b(?:defined|given|denoted)\s+(?:as|by)\s*[.:]?$|"
                            r"\bas follows\s*[.:]?$|\bthe following\s*[.:]?$")


def _math_fragment(prose: str) -> CheckFailure | None:
    """A math item that starts with markup (``\\item``, a run-in ``\\textbf`` heading) or stops where its
    formula or environment should begin ("is defined as", ``\\begin{align}``) is a piece of its page."""
    if _MATH_MARKUP_LEAD.match(prose):
        return CheckFailure("fragment", f"starts with markup {prose.split()[0][:16]!r}")
    end = _MATH_OPEN_END.search(prose)
    if end:
        return CheckFailure("fragment", f"stops before what it announces: {end.group(0).strip()!r}")
    if prose.count("\\begin{") != prose.count("\\end{"):
        return CheckFailure("fragment", "an environment it opens or closes is elsewhere")
    return None


def _subject_problem(claim: str, subject: str | None) -> CheckFailure | None:
    """The subject is an activity ("Speaking against oppression") or carries an adverb ("... often")."""
    gerund = _GERUND_CLAUSE.match(claim)
    if gerund:
        return CheckFailure("opinion", f"{gerund.group(0)!r}: a claim about doing something, not about a subject")
    adverb = _first_match(_SUBJECT_ADVERB, subject) if subject else None
    if adverb and claim.startswith(subject or ""):
        return CheckFailure("opinion", f"the subject {subject!r} holds {adverb!r}: a hedged generalisation")
    return None


def check_context_en(text: str, kind: str, subject: str | None) -> CheckFailure | None:
    claim = _claim_en(text, kind)
    lead = _first_match(_CONTEXT_LEAD, claim)
    if lead:
        return CheckFailure("context", f"starts with {lead!r}: needs the surrounding text")
    such = re.search(r"\bsuch an?\b", claim)
    if such:
        return CheckFailure("context", f"{such.group(0)!r} refers back to the page")
    reference = _first_match(_PAGE_REFERENCE, claim)
    if reference:
        return CheckFailure("context", f"{reference!r} points into the page")
    definite = _DEFINITE_LEAD.match(claim)
    if definite and not any(w in ("of", "in", "for") for w in definite.group("np").split()):
        return CheckFailure("context", f"'The {definite.group('np')}': a definite description with no antecedent")
    if kind != "qa":
        problem = _subject_problem(claim, subject)
        if problem:
            return problem
    if subject and re.fullmatch(r"[A-Z][a-z]+", subject.strip()):
        rest = claim[len(subject):] if claim.startswith(subject) else claim
        noun = _first_match(_PERSON_NOUN, rest[:80])
        if noun:
            return CheckFailure("context", f"a bare first name ({subject!r}) described as a person ({noun!r})")
    return None


def check_symbols_math(text: str) -> CheckFailure | None:
    """A math item must introduce every symbol of its formulas (``math_symbols.unintroduced``), or it needs its
    page."""
    missing = unintroduced(plain_latex(text))
    if missing:
        return CheckFailure("context", f"uses symbols it does not introduce: {', '.join(missing[:4])}")
    return None


def check_time_en(text: str, kind: str) -> CheckFailure | None:
    word = _first_match(_TIME_RELATIVE, text) or _first_match(_ROLE_NOW, text) or _first_match(_AGE_OR_SHARE, text)
    if word and not _DATED.search(text):
        return CheckFailure("time_relative", f"{word!r} with no date")
    return None


def check_opinion_en(text: str, domain: str) -> CheckFailure | None:
    scrubbed = _MATH_WE.sub(" ", text) if domain == "math" else text
    evaluative = _EVALUATIVE_MATH if domain == "math" else _EVALUATIVE
    checks = [("hedge", _HEDGES), ("first person", _FIRST_PERSON), ("second person", _SECOND_PERSON),
              ("evaluative", evaluative)] + ([("hedge", _HEARSAY)] if domain != "math" else [])
    for label, pattern in checks:
        word = _first_match(pattern, scrubbed)
        if word:
            return CheckFailure("opinion", f"{label}: {word!r}")
    if domain != "math" and re.search(r"!+[\"'”’)]*$", text.rstrip()):  # "Yahoo! is" is a name
        return CheckFailure("opinion", "an exclamation")
    return None


def check_promotional_en(text: str) -> CheckFailure | None:
    word = _first_match(_PROMOTIONAL, text) or _first_match(_URL, text)
    return CheckFailure("promotional", f"{word!r}") if word else None


# ---------------------------------------------------------------------------------------------- Chinese rules

_ZH_OPINION = re.compile(r"我|咱|觉得|认为|以为|个人|可能|也许|大概|好像|似乎|估计|真的|太好|非常好|超级|"
                         r"必须|应当|应该|要求|目标|任务|不断|始终|伟大|光荣|重要|关键|首要|宝贵|强大|显著|核心|"
                         r"逻辑|根本|本质|最高|一蹴而就|"
                         r"最好的|最棒|最美|喜欢|讨厌|吧[。！？]?$|呢[。！？]?$|啊[。！？]?$|！|"
                         # rhetoric of slogans and essays: mission, soul, force, "unprecedented", "no doubt"
                         r"事业(?!单位|部)|使命|灵魂|力量|法宝|奋斗|硬道理|要务|前无古人|开创性|不容|伪命题|无疑|毕竟|哪怕|"
                         r"然而|总是|或许|仅仅|遥不可及|充满|艰辛|前所未有|不可抗拒|重大|深刻|深远|辉煌|"
                         r"美好|幸福|坚实|唯一|不要|千万|"
                         r"最(?![大小早晚初后终高低多少长短近远新老优惠])")
_ZH_CONTEXT = re.compile(r"^(?:这|那|此|其|该|本|他|她|它|他们|她们|它们|上述|以下|下面|上面|如下|而且|而|但是|但|"
                         r"特别|无论|尽管|虽然|即使|不管|只要|除了|对于|关于|随着|通过|由于|作为|从|有|第[一二三四五六七八九十]|"
                         r"所以|因此|因而|于是|然后|同时|另外|此外|并且|并|且|也|还|又|就|和|以及|或者|或|"
                         r"许多|很多|有些|有人|一些|大家|人们|毕竟|似乎|哪怕|不过|可是|只是|另一)")
_ZH_TIME = re.compile(r"最近|近日|近期|日前|目前|现在|如今|当前|今年|去年|明年|今天|昨天|明天|本周|上周|下周|"
                      r"本月|上个月|刚刚|最新|隔夜|前月|上月|近年|近来|当下|眼下|今后|未来|未來|将来|現在|當前|今後|"
                      r"(?<![\d年])\d{1,2}\s*月(?!\d)")
_ZH_DATED = re.compile(r"\d{4}\s*年|[一二]〇[〇一二三四五六七八九]{2}年")
_ZH_PROMO = re.compile(r"欢迎|优惠|点击|购买|免费|热线|咨询|报名|官网|下载|注册|彩票|娱乐城|博彩|加盟|代理|"
                       r"电话|微信|QQ|扫码|关注|开户|投注|返水|首存|送彩金")
_ZH_END = re.compile(r"[。！？；.!?”」』）)]$")


def check_fragment_zh(text: str, kind: str) -> CheckFailure | None:
    claim = text.split(" A: ", 1)[1] if kind == "qa" and " A: " in text else text
    if len(HAN.findall(claim)) < 6:
        return CheckFailure("fragment", "fewer than 6 Chinese characters")
    if kind != "qa" and not _ZH_END.search(claim.rstrip()):
        return CheckFailure("fragment", "no sentence-final punctuation")
    if re.match(r"^[，,、；;：:）)》」』{<*]", claim):
        return CheckFailure("fragment", "starts with punctuation or markup")
    if any(claim.count(a) != claim.count(b) for a, b in _QUOTES):
        return CheckFailure("fragment", "unbalanced quotes or brackets")
    return None


def check_subject_zh(kind: str, subject: str | None) -> CheckFailure | None:
    """A zh definition or fact must be about one entity (``extract.zh_entity``), not a clause or a list."""
    if kind in ("definition", "fact") and not subject:
        return CheckFailure("context", "no entity before the copula: a clause, a list or a hedge is the subject")
    return None


def check_context_zh(text: str, kind: str, subject: str | None) -> CheckFailure | None:
    announces = re.match(r"^[^，。]{1,20}?(?:是|为)[，,：:]", text)
    if announces:
        return CheckFailure("context", f"{announces.group(0)!r} announces a claim instead of making it")
    lead = _first_match(_ZH_CONTEXT, text)
    if lead:
        return CheckFailure("context", f"starts with {lead!r}: needs the surrounding text")
    if subject and re.search(r"[这那此其该本他她它]", subject):
        return CheckFailure("context", f"deictic subject {subject!r}")
    return None


def check_time_zh(text: str) -> CheckFailure | None:
    word = _first_match(_ZH_TIME, text)
    if word and not _ZH_DATED.search(text) and not _DATED.search(text):
        return CheckFailure("time_relative", f"{word!r} with no date")
    return None


def check_opinion_zh(text: str) -> CheckFailure | None:
    word = _first_match(_ZH_OPINION, text)
    return CheckFailure("opinion", f"{word!r}") if word else None


def check_promotional_zh(text: str) -> CheckFailure | None:
    word = _first_match(_ZH_PROMO, text) or _first_match(_URL, text)
    return CheckFailure("promotional", f"{word!r}") if word else None


# ---------------------------------------------------------------------------------------------- code rules

_CODE_CONTEXT = re.compile(r"^(?:same as|see|like|as above|alias|deprecated|this|it|internal|helper|"
                           r"used by|backwards?[- ]compat)\b", re.IGNORECASE)


def check_code(text: str) -> CheckFailure | None:
    """A docstring item ``name(args): summary``: the summary must say something on its own."""
    summary = text.split(": ", 1)[1] if ": " in text else text
    if len(summary.split()) < 3:
        return CheckFailure("fragment", f"summary of {len(summary.split())} words")
    if re.match(r"^[\w.]+\s*(?:,|=|\()", summary):
        return CheckFailure("fragment", "summary starts with code, not a sentence")
    lead = _first_match(_CODE_CONTEXT, summary)
    if lead:
        return CheckFailure("context", f"summary starts with {lead!r}")
    return None


# ---------------------------------------------------------------------------------------------- entry point

Check = Callable[[], CheckFailure | None]


def _checks(text: str, domain: str, kind: str, subject: str | None) -> list[Check]:
    if domain == "code":
        return [lambda: check_code(text)]
    if domain == "zh":
        return [lambda: check_fragment_zh(text, kind), lambda: check_context_zh(text, kind, subject),
                lambda: check_time_zh(text), lambda: check_opinion_zh(text), lambda: check_promotional_zh(text),
                lambda: check_subject_zh(kind, subject)]
    prose = _prose(text, domain)
    checks: list[Check] = [lambda: check_context_en(prose, kind, subject), lambda: check_time_en(prose, kind),
                           lambda: check_opinion_en(prose, domain), lambda: check_promotional_en(prose)]
    if kind != "theorem":  # a LaTeX environment's body is formula-heavy; its bounds are the environment's
        checks.insert(0, lambda: check_fragment_en(prose, kind, domain))
    if domain == "math":
        checks.insert(1, lambda: check_symbols_math(text))
    return checks


def knowledge_problems(text: str, domain: str, kind: str, subject: str | None = None,
                       max_chars: int = MAX_ITEM_CHARS) -> list[CheckFailure]:
    """The failed knowledge checks of one item, cheapest first (empty: keep). Stops at the first failure."""
    for check in [lambda: check_too_long(text, domain, kind, max_chars),
                  lambda: check_language(text, domain, kind), *_checks(text, domain, kind, subject)]:
        failure = check()
        if failure:
            return [failure]
    return []


def screen_items(items: Sequence[Item], max_chars: int = MAX_ITEM_CHARS
                 ) -> tuple[list[Item], list[tuple[Item, CheckFailure]]]:
    """(items that pass every knowledge check, [(item, its first failure)]); each verdict lands in
    ``item.verification["knowledge_checks"]`` ("passed" or the failure's reason)."""
    passed: list[Item] = []
    failed: list[tuple[Item, CheckFailure]] = []
    for item in items:
        problems = knowledge_problems(item.text, item.domain, item.kind, item.subject, max_chars)
        item.verification["knowledge_checks"] = problems[0].reason if problems else "passed"
        if problems:
            failed.append((item, problems[0]))
        else:
            passed.append(item)
    return passed, failed
