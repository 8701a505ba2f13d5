"""Which symbols of a math statement it never introduces: those send the reader back to the page.

A statement out of its page can be relied on only if every letter in its formulas is
introduced in it ("Let $K$ be a number field", "an integer $n$", "where $B$ is a Bernoulli
number", "for all $x$", a bound index $\\sum_{i=1}$) or is standard ($\\pi$, $\\zeta$, Euler's
$\\phi$, $\\mathbb{Q}$). "Then $pB_m \\equiv S_m(p)$" uses $S$ no sentence of its own defines.
"""

from __future__ import annotations

import re

_FORMULA = re.compile(r"\$\$.+?\$\$|\$[^$]+\$|\\\(.+?\\\)|\\\[.+?\\\]", re.DOTALL)
# words before a formula that introduce it: "Let $p$", "for all $x$", "where $B$", "with $F_n$", "given $n$"
_INTRODUCER = re.compile(r"\b(?:let|for|where|suppose|given|with|consider|fix|fixed|take|if|iff|any|each|every|"
                         r"some|all|and let|such that)\s*$", re.IGNORECASE)
# a noun right before a formula names it: "an integer $n$", "a prime $p > 5$", "the field $K$" (not "the
# equation $...$": a formula named as a whole introduces none of its letters)
_NOUN_BEFORE = re.compile(r"\b(?:integers?|naturals?|numbers?|primes?|fields?|rings?|groups?|subgroups?|sets?|"
                          r"subsets?|elements?|polynomials?|functions?|maps?|mappings?|matri(?:x|ces)|vectors?|"
                          r"spaces?|points?|curves?|sequences?|ideals?|modules?|extensions?|bases?|base|constants?|"
                          r"variables?|roots?|divisors?|characters?|homomorphisms?|morphisms?|operators?|reals?|"
                          r"graphs?|vert(?:ex|ices)|domains?|lattices?|regions?|fractions?|pairs?|triples?|"
                          r"tuples?|measures?|metrics?|norms?|valuations?|forms?|symbols?|modulus|exponents?|"
                          r"index|indices|degrees?|parameters?|digits?|words?|strings?|basis|algebras?|varieties|"
                          r"variety|surfaces?|manifolds?|categor(?:y|ies)|objects?|topolog(?:y|ies)|permutations?|"
                          r"partitions?|units?|places?|primes? ideals?|characteristic|closure|order|size|"
                          r"denominators?|numerators?|coefficients?|entries|entry|terms?|values?|solutions?|"
                          r"written|denoted|write|denote|call|called|notation)(?:\s+(?:by|as))?\s*$",
                          re.IGNORECASE)
# "$N-1=2^tn$, $n$ odd", "$x = \\frac{1}{2}$": an adjective after, or a letter set equal to something
_ADJECTIVE_AFTER = re.compile(r"^\s*(?:odd|even|prime|positive|negative|nonzero|non-zero|fixed|arbitrary|squarefree|"
                              r"rational|real|complex|integral)\b", re.IGNORECASE)
_DEFINED_LHS = re.compile(r"^\s*\\?([A-Za-z]+)\s*(?:_\{?\w+\}?)?\s*(?:\([^()]*\))?\s*(?::=|=)")
# "$x^4+y^4=z^2$ has no solution in positive integers": the letters before it range over a named set
_RANGES_OVER = re.compile(r"\bin (?:the )?(?:positive |nonnegative |non-negative |nonzero )?(?:integers|natural numbers|"
                          r"rationals|rational numbers|reals|real numbers|complex numbers)\b", re.IGNORECASE)
_MEMBER = re.compile(r"^(.*?)\\in\b", re.DOTALL)
# what follows a formula that introduces it: "$m$ is also an integer", "$F_n$ being the nth Fibonacci number"
_NOUN_AFTER = re.compile(r"^\s*(?:being|denotes?|(?:is|are)\s+(?:also\s+)?(?:an?|any|some)\s+\w+|be\b)", re.IGNORECASE)
_STANDARD = frozenset({"pi", "zeta", "phi", "varphi", "sigma", "tau", "mu", "Lambda", "Gamma", "infty", "Omega",
                       "omega", "e", "i", "mod", "gcd", "lcm", "log", "ln", "exp", "deg", "lim", "max", "min",
                       "sup", "inf", "dim", "det", "sin", "cos", "tan", "ord"})
_GREEK = ("alpha|beta|gamma|delta|epsilon|varepsilon|eta|theta|vartheta|kappa|lambda|nu|xi|rho|chi|psi|Delta|Theta|"
          "Xi|Sigma|Phi|Psi|Pi|Lambda|Gamma|Omega|omega|mu|tau|sigma|phi|varphi|zeta|pi")
_COMMAND_ARG = re.compile(r"\\(?:text|mbox|mathrm|operatorname|textrm|textit|mathbb|Bbb|mathcal|mathfrak|label|"
                          r"ref|eqref|begin|end)\s*\{[^{}]*\}")
_SYMBOL = re.compile(rf"\\({_GREEK})\b|\\[A-Za-z]+|([A-Za-z]+)")
_BOUND = re.compile(r"\\(?:sum|prod|bigcup|bigcap|lim|int|max|min)\s*_\s*\{?\s*\\?([A-Za-z]+)|"
                    r"\\(?:forall|exists)\s*\\?([A-Za-z]+)")


def symbols(formula: str) -> set[str]:
    """The letters and Greek symbols of one formula (its LaTeX commands and text arguments left
    out; a run of up to three letters is their product, a longer one a word)."""
    body = _COMMAND_ARG.sub(" ", formula.strip("$").removeprefix("\\(").removesuffix("\\)")
                            .removeprefix("\\[").removesuffix("\\]"))
    found = set()
    for m in _SYMBOL.finditer(body):
        if m.group(1):
            found.add(m.group(1))
        elif m.group(2) and m.group(2) not in _STANDARD and len(m.group(2)) <= 3:  # "pB" is p times B
            found.update(m.group(2))
    return found


def bound(formula: str) -> set[str]:
    """Letters a formula binds itself: summation and product indices, quantified variables."""
    return {m.group(1) or m.group(2) for m in _BOUND.finditer(formula)}


def unintroduced(text: str) -> list[str]:
    """The symbols of ``text``'s formulas that it neither introduces nor may take as standard, in order."""
    formulas = list(_FORMULA.finditer(text))
    introduced: set[str] = set()
    for i, m in enumerate(formulas):
        before = _FORMULA.sub(" X ", text[formulas[i - 1].end() if i else 0:m.start()])
        after = text[m.end():formulas[i + 1].start() if i + 1 < len(formulas) else len(text)]
        body = m.group(0).strip("$")
        if (_INTRODUCER.search(before) or _NOUN_BEFORE.search(before) or _NOUN_AFTER.match(after)
                or _ADJECTIVE_AFTER.match(after) or _RANGES_OVER.search(after.split(".")[0])):
            introduced |= symbols(m.group(0))
        lhs = _DEFINED_LHS.match(body)
        member = _MEMBER.match(body)
        introduced |= bound(m.group(0)) | ({lhs.group(1)} if lhs else set()) | (symbols(member.group(1)) if member
                                                                               else set())
    missing: list[str] = []
    for m in formulas:
        for symbol in sorted(symbols(m.group(0))):
            if symbol not in introduced and symbol not in _STANDARD and symbol not in missing:
                missing.append(symbol)
    return missing
