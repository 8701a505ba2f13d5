"""L0 math extraction: every kind of math markup on real pages comes out as LaTeX.

Snippets are cut from the real pages of bench/data/math_extraction (provenance in its README):
MathJax-demos-web (Apache-2.0), Wikipedia via mozilla/readability's test pages (CC BY-SA), KaTeX
0.16.11's own output, WordPress.com's latex.php image markup.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from lxml import html as lhtml

from tier_assets.curation.readers.html import extract_main_text
from tier_assets.curation.readers.math_html import has_math_markup, latex_in_place
from tier_assets.curation.readers.mathml import mathml_to_latex, unicode_to_latex

BENCH = Path(__file__).resolve().parents[1] / "bench/data/math_extraction"


def converted(fragment: str) -> str:
    """The text of a fragment after the math pass, whitespace folded."""
    root = lhtml.fragment_fromstring(fragment, create_parent="div")
    latex_in_place(root)
    return " ".join(" ".join(root.itertext()).split())


def test_mathjax_v2_script_tags_keep_their_tex_and_drop_the_rendered_copy():
    # MathJax v2 output: preview and rendered frame beside the script that holds the TeX
    fragment = ('<p>When <span class="MathJax_Preview">a≠0</span><span class="MathJax" id="MathJax-Element-1-Frame">'
                '<nobr><span class="math">a≠0</span></nobr></span><script type="math/tex" id="MathJax-Element-1">'
                'a \\ne 0</script>, the solutions are</p><div class="MathJax_Display"><span class="MathJax">x</span>'
                '</div><script type="math/tex; mode=display">x = {-b \\pm \\sqrt{b^2-4ac} \\over 2a}.</script>')
    assert converted(fragment) == ("When $a \\ne 0$, the solutions are "
                                   "$$x = {-b \\pm \\sqrt{b^2-4ac} \\over 2a}.$$")


def test_mathjax_v2_script_alone_in_a_container_becomes_a_paragraph():
    # MathJax-demos-web v2-support/v2-script-tags.html: scripts straight inside a div
    root = lhtml.fragment_fromstring('<div class="show display">\n  <script type="text/tex">x + 1</script>\n'
                                     '  <script type="text/tex; mode=display">x+1\\over x-1</script>\n</div>')
    assert latex_in_place(root) == 2
    assert [p.text for p in root.iter("p")] == ["$x + 1$", "$$x+1\\over x-1$$"]


def test_wikipedia_math_element_gives_its_annotation_once():
    # readability test-pages/wikipedia-3 (Hermitian matrix): hidden MathML with annotation + fallback image
    fragment = ('<p>If the conjugate transpose of a matrix is denoted by <span class="mwe-math-element"><span '
                'class="mwe-math-mathml-inline mwe-math-mathml-a11y" style="display: none;"><math xmlns='
                '"http://www.w3.org/1998/Math/MathML" alttext="{\\displaystyle A^{\\mathsf {H}}}"><semantics><mrow>'
                '<msup><mi>A</mi><mi mathvariant="sans-serif">H</mi></msup></mrow><annotation encoding='
                '"application/x-tex">{\\displaystyle A^{\\mathsf {H}}}</annotation></semantics></math></span>'
                '<img src="https://wikimedia.org/api/rest_v1/media/math/render/svg/d9415702ab196cc26f5df37af2d90e07'
                '318e93df" class="mwe-math-fallback-image-inline" aria-hidden="true" alt="{\\displaystyle '
                'A^{\\mathsf {H}}}"></span>, then the Hermitian property can be written concisely as</p>')
    assert converted(fragment) == ("If the conjugate transpose of a matrix is denoted by $A^{\\mathsf {H}}$, "
                                   "then the Hermitian property can be written concisely as")


def test_wikipedia_png_mode_image_alt_is_the_formula():
    fragment = ('<p>a matrix <span class="mwe-math-element"><img src="https://wikimedia.org/api/rest_v1/media/math/'
                'render/svg/7daff47fa58cdfd29dc333def748ff5fa4c923e3" class="mwe-math-fallback-image-inline" '
                'alt="{\\displaystyle A}"></span> is Hermitian</p>')
    assert converted(fragment) == "a matrix $A$ is Hermitian"


def test_katex_output_keeps_the_annotation_not_the_glyphs():
    # katex 0.16.11 renderToString("x^2") / display mode, as KaTeX auto-render leaves a page
    inline = ('<span class="katex"><span class="katex-mathml"><math xmlns="http://www.w3.org/1998/Math/MathML">'
              '<semantics><mrow><msup><mi>x</mi><mn>2</mn></msup></mrow><annotation encoding="application/x-tex">'
              'x^2</annotation></semantics></math></span><span class="katex-html" aria-hidden="true"><span '
              'class="base"><span class="mord"><span class="mord mathnormal">x</span><span class="msupsub">'
              '<span class="mord mtight">2</span></span></span></span></span></span>')
    display = '<span class="katex-display">' + inline.replace("x^2", "\\sum_k a_k") + "</span>"
    assert converted(f"<p>Take {inline} and</p>{display}") == "Take $x^2$ and $$\\sum_k a_k$$"


def test_mathml_without_annotation_is_converted():
    # MathJax-demos-web page/mml-chtml.html: the quadratic formula as bare MathML
    math = lhtml.fragment_fromstring(
        '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mi>x</mi><mo>=</mo><mrow><mfrac><mrow>'
        '<mo>&#x2212;</mo><mi>b</mi><mo>&#xB1;</mo><msqrt><msup><mi>b</mi><mn>2</mn></msup><mo>&#x2212;</mo>'
        '<mn>4</mn><mi>a</mi><mi>c</mi></msqrt></mrow><mrow><mn>2</mn><mi>a</mi></mrow></mfrac></mrow><mo>.</mo>'
        '</math>')
    assert mathml_to_latex(math) == "x=\\frac{-b\\pm\\sqrt{b^{2}-4ac}}{2a}."


@pytest.mark.parametrize(("mathml", "latex"), [
    ("<mrow><munderover><mo>&#x2211;</mo><mrow><mi>k</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi></munderover>"
     "<msub><mi>a</mi><mi>k</mi></msub></mrow>", "\\sum_{k=1}^{n}a_{k}"),
    ("<mrow><mo>(</mo><mfrac linethickness=\"0\"><mi>n</mi><mi>k</mi></mfrac><mo>)</mo></mrow>", "\\binom{n}{k}"),
    ("<mover><mi mathvariant=\"bold\">B</mi><mo stretchy=\"false\">&#x2192;</mo></mover>", "\\vec{\\mathbf{B}}"),
    ("<mrow><mi>sin</mi><mo>&#x2061;</mo><mi>&#x3B8;</mi></mrow>", "\\sin\\theta"),
    ("<mroot><mi>x</mi><mn>3</mn></mroot>", "\\sqrt[3]{x}"),
])
def test_mathml_constructs(mathml: str, latex: str):
    math = lhtml.fragment_fromstring(f'<math xmlns="http://www.w3.org/1998/Math/MathML">{mathml}</math>')
    assert mathml_to_latex(math) == latex


def test_mathjax_v3_container_uses_its_assistive_mathml():
    # readability test-pages/mathjax: MathJax v3 CHTML glyphs + assistive MathML, no TeX on the page
    fragment = ('<p>When <mjx-container class="MathJax" jax="CHTML"><mjx-math class="MJX-TEX" aria-hidden="true">'
                '<mjx-mi class="mjx-i"><mjx-c class="mjx-c1D44E TEX-I"></mjx-c></mjx-mi></mjx-math>'
                '<mjx-assistive-mml unselectable="on" display="inline"><math xmlns="http://www.w3.org/1998/Math/MathML">'
                '<mi>a</mi><mo>&#x2260;</mo><mn>0</mn></math></mjx-assistive-mml></mjx-container>, there are two</p>')
    assert converted(fragment) == "When $a\\ne0$, there are two"


def test_wordpress_latex_image_alt_is_the_formula_and_plain_images_are_left_alone():
    fragment = ('<p>Let <img src="https://s0.wp.com/latex.php?latex=%7Ba_1%7D&amp;bg=ffffff" alt="{a_1}" '
                'class="latex" /> be fixed. <img src="/photo.jpg" alt="a photo of x = 1"></p>')
    assert converted(fragment) == "Let ${a_1}$ be fixed."


def test_tex_text_loose_in_a_container_is_kept_as_a_paragraph():
    # KaTeX contrib/auto-render/index.html: TeX written straight into a div
    root = lhtml.fragment_fromstring('<div id="test">This is some text $math \\frac12$ other text <span class="blue">'
                                     'Other node</span> blah $$ \\int_2^3 $$ and more</div>')
    latex_in_place(root)
    paragraphs = [" ".join(p.text_content().split()) for p in root.iter("p")]
    assert paragraphs == ["This is some text $math \\frac12$ other text", "blah $$ \\int_2^3 $$ and more"]


def test_a_formula_holding_a_dollar_gets_bracket_delimiters():
    fragment = '<p>so <script type="math/tex; mode=display">\\text{for $|q| < 1$}</script></p>'  # script text is raw
    assert converted(fragment) == "so \\[\\text{for $|q| < 1$}\\]"


def test_pages_without_math_markup_skip_the_pass():
    assert not has_math_markup("<html><body><p>Plain news text, $5 off.</p></body></html>")
    assert has_math_markup('<script type="math/tex">x</script>')


def test_unicode_to_latex_spells_symbols_and_leaves_tex_alone():
    assert unicode_to_latex("x≠y, αx \\left(") == "x\\ne y, \\alpha x \\left("


def test_real_wikipedia_page_end_to_end():
    """The whole Hermitian matrix page through extract_main_text: formulas as LaTeX in the main text."""
    gold = {json.loads(line)["id"]: json.loads(line) for line in (BENCH / "gold.jsonl").read_text().splitlines()}
    page = gzip.decompress((BENCH / gold["wikipedia-hermitian-matrix"]["file"]).read_bytes()).decode("utf-8")
    _, text = extract_main_text(page, None)
    assert "$A{\\text{ Hermitian}}\\quad \\iff \\quad a_{ij}={\\overline {a_{ji}}}$" in text
    assert "$$\\langle w,Av\\rangle =\\langle Aw,v\\rangle ,$$" in text
    assert "displaystyle" not in text


def test_mathjax_v2_frame_without_its_script_falls_back_to_the_assistive_mathml():
    fragment = ('<p>so <span class="MathJax" id="MathJax-Element-3-Frame"><nobr><span class="math">x2</span></nobr>'
                '<span class="MJX_Assistive_MathML"><math xmlns="http://www.w3.org/1998/Math/MathML"><msup><mi>x'
                '</mi><mn>2</mn></msup></math></span></span> grows</p>')
    assert converted(fragment) == "so $x^{2}$ grows"
