"""L1 content safety: URL blocklist per category, URL terms, content terms (en, zh; hard and soft
thresholds), the toxicity signal, hard negatives that must survive, and the demo's zh partition."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from tier_assets.curation.l0 import ingest_partition
from tier_assets.curation.l1.safety import (
    SAFETY_DATA,
    ContentSafetyFilter,
    SafetyConfig,
    ToxicitySignal,
    URLSafetyFilter,
    lists_version,
    parent_domains,
    url_host,
)
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.l1.tier import run_l1_partition
from tier_assets.curation.sources import SourceEntry
from tier_assets.curation.storage import PartitionRef, TierStore

DEMO_ZH = Path(__file__).resolve().parents[1] / "tier_assets" / "demo_data" / "zh"
ADULT_DEMO_URL = "http://0513mt.com/index.php/art/detail/id/8884.html"
GAMBLING_DEMO_URL = "http://044545.com/topic/20200207/015849.html"


def safety(domain: str, **overrides: Any) -> SafetyConfig:
    return load_l1_settings(domain, {"safety": overrides} if overrides else None).safety


def doc(text: str, url: str | None = None) -> dict[str, Any]:
    return {"text": text, "url": url, "signals": {}}


def first_listed(category: str) -> str:
    """A real domain from the bundled UT1 list of ``category``."""
    with gzip.open(SAFETY_DATA / "blocklists" / f"{category}.txt.gz", "rt") as f:
        return next(line.strip() for line in f if line.strip() and not line.startswith("#"))


# ---------------------------------------------------------------------------------------------- URL filter


@pytest.mark.parametrize("category", ["adult", "gambling", "phishing", "malware"])
def test_url_blocklist_rejects_each_category_with_its_name(category: str) -> None:
    domain = first_listed(category)
    f = URLSafetyFilter(safety("en"))
    d = doc("text", f"https://sub.{domain}/some/page.html")
    assert f.check(d) == (f"safety:url_blocklist:{category}", f"domain {domain} is on the {category} blocklist")
    assert d["signals"]["safety"]["url_blocklist"] == category


def test_url_blocklist_matches_parents_not_lookalikes() -> None:
    assert url_host("HTTP://www.Example.COM:8080/x") == "example.com"
    assert parent_domains("a.b.example.com") == ["a.b.example.com", "b.example.com", "example.com"]
    domain = first_listed("gambling")
    f = URLSafetyFilter(safety("en"))
    assert f.check(doc("text", f"https://not{domain}.org/page")) is None


def test_url_terms_banned_word_soft_words_and_subword() -> None:
    f = URLSafetyFilter(safety("en"))
    verdict = f.check(doc("text", "https://example.org/videos/bukkake-party"))
    assert verdict is not None and verdict[0] == "safety:url_terms" and "bukkake" in verdict[1]
    verdict = f.check(doc("text", "https://example.org/nude-lingerie-gallery"))
    assert verdict is not None and "2 soft banned words" in verdict[1]
    verdict = f.check(doc("text", "https://example.org/watch/freesexvideos/1"))
    assert verdict is not None and "subword" in verdict[1]


def test_url_terms_keep_ordinary_and_single_soft_word_urls() -> None:
    f = URLSafetyFilter(safety("en"))
    assert f.check(doc("text", "https://www.healthline.com/health/sexual-health/contraception")) is None
    assert f.check(doc("text", "https://www.bbc.com/news/uk-gambling-act-review")) is None
    assert f.check(doc("text", None)) is None


# ------------------------------------------------------------------------------------------ content terms

ADULT_EN = ("Watch free hardcore porn videos: busty milf blowjob, teen camgirl creampie, gangbang and bukkake "
            "clips updated daily. Join now for xxx access.")
GAMBLING_EN = ("Royal Spins online casino: claim your welcome bonus and 150 free spins, plus a no deposit bonus. "
               "Play real money slots and live casino roulette now.")
MEDICAL_EN = (
    "Erectile dysfunction affects about one in five men over 40. The penis fills with blood when the nerves "
    "and vessels work together; diabetes, smoking and heart disease interfere. Doctors may prescribe sildenafil "
    "(Viagra) after checking the heart. Sexual counselling helps when anxiety plays a part. " * 3
)
SEX_ED_EN = (
    "Sex education at school covers puberty, consent, contraception and sexually transmitted infections. "
    "Pupils learn how the vagina and penis change during puberty, why consent matters before any sexual "
    "activity, and how condoms reduce the risk of infection. Parents can ask to see the materials. " * 3
)
GAMBLING_NEWS_EN = (
    "The government will tighten gambling regulation after a review found that online casino operators "
    "targeted problem gamblers. Stake limits on online slots will fall to 2 pounds, and betting firms must run "
    "affordability checks. Charities said the gambling reforms were overdue; the industry warned of job losses. "
    * 2
)


def test_content_terms_en_hard_rejects_adult_and_gambling() -> None:
    f = ContentSafetyFilter(safety("en"))
    adult = f.check(doc(ADULT_EN))
    assert adult is not None and adult[0] == "safety:content_terms:adult" and "hard terms" in adult[1]
    gambling = f.check(doc(GAMBLING_EN))
    assert gambling is not None and gambling[0] == "safety:content_terms:gambling"


@pytest.mark.parametrize("text", [MEDICAL_EN, SEX_ED_EN, GAMBLING_NEWS_EN], ids=["medical", "sex_ed", "news"])
def test_content_terms_en_hard_negatives_survive(text: str) -> None:
    d = doc(text)
    assert ContentSafetyFilter(safety("en")).check(d) is None
    assert d["signals"]["safety"]["terms"], "the soft terms are still measured"


def test_one_hard_term_survives_and_soft_density_needs_variety() -> None:
    f = ContentSafetyFilter(safety("en"))
    assert f.check(doc("A court heard that the defendant kept porn on a work laptop.")) is None
    repeated = doc("The vibrator mechanism releases the alarm vibrator. " * 10)
    assert f.check(repeated) is None  # one soft word repeated is not a theme
    varied = "nude topless erotic sexy orgasm nipples lingerie panties " * 3
    assert f.check(doc(varied)) is None  # soft terms alone, however dense, never decide
    verdict = f.check(doc(varied + " and one porn link"))
    assert verdict is not None and "1 hard + " in verdict[1]


def test_thresholds_are_recipe_settings() -> None:
    text = "A court heard that the defendant kept porn and a dildo on a work laptop, the report said."
    assert ContentSafetyFilter(safety("en")).check(doc(text)) is not None
    assert ContentSafetyFilter(safety("en", min_hard_hits=3)).check(doc(text)) is None


ADULT_ZH = "严选免费成人小说\n巨乳菲佣 我上了漂亮的女经理 爆了奶奶级熟女的菊 一次刺激的偷情 人妻的秘密 乱伦小说"
GAMBLING_ZH = "新一轮的赔付活动继续上线，充值300，600、1000计划跟上，赚取一倍流水，即可提现带走。百家乐 真人娱乐 老虎机"
LOTTERY_ZH = "2020年第086期 六合彩 本期特码：36 第087期 三肖中特 管家婆心水论坛 白小姐资料 跑狗图"
MEDICAL_ZH = ("乳腺癌是女性最常见的恶性肿瘤之一。医生建议四十岁以上女性定期做乳房检查；性生活、生育和哺乳史都会影响风险。"
              "如果发现乳房肿块、乳头溢液，应及时就医。" * 3)
SEX_ED_ZH = ("青春期性教育应当告诉学生身体的变化、性行为的后果以及如何拒绝性侵害。老师会讲解避孕和性传播疾病的预防，"
             "家长也应当与孩子坦诚交流。" * 3)
GAMBLING_NEWS_ZH = ("公安部通报，今年以来共破获跨境赌博案件一千余起，打掉网络赌博平台三百多个。警方提醒，网络赌博常以"
                    "高额返利为诱饵，参与者往往血本无归。澳门特区政府也修订了博彩法，加强对赌场的监管。" * 2)


@pytest.mark.parametrize(("text", "category"), [(ADULT_ZH, "adult"), (GAMBLING_ZH, "gambling"),
                                                (LOTTERY_ZH, "gambling")])
def test_content_terms_zh_reject_with_category(text: str, category: str) -> None:
    verdict = ContentSafetyFilter(safety("zh")).check(doc(text))
    assert verdict is not None and verdict[0] == f"safety:content_terms:{category}"


@pytest.mark.parametrize("text", [MEDICAL_ZH, SEX_ED_ZH, GAMBLING_NEWS_ZH], ids=["medical", "sex_ed", "news"])
def test_content_terms_zh_hard_negatives_survive(text: str) -> None:
    assert ContentSafetyFilter(safety("zh")).check(doc(text)) is None


# the real 05925.net page (bench set): an adult site whose text is only its disclaimer
ADULT_DISCLAIMER_ZH = ("网站地图\n郑重声明：我们立足于美利坚合众国，对美利坚合众国华人服务，未经授权禁止复制或建立镜像，"
                       "请未成年网友自觉离开！\n警告：本站所有内容均来自广大网友分享上传\nCopyright 2017-2027")
BRACKET_SPAM_ZH = ("关于最新相关内容：她说另有警察受伤。" + "".join(f"【{c}】" for c in "随着经济社会的发展以及女性收入和教育程度的提高"
                   "不少人的婚姻观念也发生了变化香港中文大学校长被大批学生包围") + "新华社香港电。")
ONE_TERM_SHORT_ZH = "在线点播 最新影片 热门推荐 三级片 排行榜 会员中心 联系我们 网站地图"
# a long film-review page that names one adult genre once, on a numeric host (1905.com is a real film site)
FILM_REVIEW_ZH = ("这部电影讲述了一个普通家庭在时代变迁中的命运沉浮，导演用克制的镜头语言记录了父母与子女之间的隔阂与和解。"
                  * 12 + "影片曾被误传为三级片，其实只是一部严肃的家庭剧。")
INTERNET_CAFE_ZH = "本网吧实行实名登记制度，未成年人请勿入内，请顾客遵守上网规定，文明上网，爱护设备。" * 3


def test_zh_adult_disclaimer_page_is_adult() -> None:
    d = doc(ADULT_DISCLAIMER_ZH, "http://example-video.net/index.php/vod/type/id/53.html")
    verdict = ContentSafetyFilter(safety("zh")).check(d)
    assert verdict is not None and verdict[0] == "safety:content_terms:adult"
    assert d["signals"]["safety"]["terms"]["adult"]["hard"] >= 2


def test_zh_character_bracketing_spam_is_spam() -> None:
    verdict = ContentSafetyFilter(safety("zh")).check(doc(BRACKET_SPAM_ZH))
    assert verdict is not None and verdict[0] == "safety:content_terms:spam"


def test_zh_numeric_host_needs_one_hard_term_only_on_a_short_page() -> None:
    f = ContentSafetyFilter(safety("zh"))
    assert f.check(doc(ONE_TERM_SHORT_ZH, "http://news.example.com/list.html")) is None
    on_numeric = doc(ONE_TERM_SHORT_ZH, "http://096355.com/video/11073.html")
    verdict = f.check(on_numeric)
    assert verdict is not None and verdict[0] == "safety:content_terms:adult"
    assert on_numeric["signals"]["safety"]["suspicious_host"] == "096355.com"
    assert f.check(doc(ONE_TERM_SHORT_ZH, "http://096355.com/x")) == verdict
    assert ContentSafetyFilter(safety("zh", suspicious_host_pattern=None)).check(
        doc(ONE_TERM_SHORT_ZH, "http://096355.com/x")) is None


@pytest.mark.parametrize(("text", "url"), [(FILM_REVIEW_ZH, "https://www.1905.com/news/1.shtml"),
                                           (INTERNET_CAFE_ZH, "http://wangba.example.cn/notice.html")],
                         ids=["film_review_numeric_host", "internet_cafe_notice"])
def test_zh_new_signals_keep_hard_negatives(text: str, url: str) -> None:
    assert ContentSafetyFilter(safety("zh")).check(doc(text, url)) is None


def test_bad_suspicious_host_pattern_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="suspicious_host_pattern"):
        safety("zh", suspicious_host_pattern="(")


# ------------------------------------------------------------------------------------------------ toxicity

ABUSIVE_EN = "\n".join([
    "you are a fucking idiot and everyone hates you",
    "shut up you stupid bitch nobody asked",
    "go kill yourself you worthless piece of shit",
    "what a dumb ass comment, moron",
    "this thread is about the new release schedule",
])


def test_toxicity_signal_rejects_abusive_text_and_records_the_share() -> None:
    d = doc(ABUSIVE_EN)
    verdict = ToxicitySignal(safety("en")).check(d)
    assert verdict is not None and verdict[0] == "safety:toxicity"
    assert d["signals"]["safety"]["toxicity"] >= 0.6
    assert d["signals"]["safety"]["toxicity_model"] == "alt-profanity-check"


def test_toxicity_signal_keeps_clean_text_and_says_when_no_model_exists() -> None:
    d = doc(SEX_ED_EN.replace(". ", ".\n"))
    assert ToxicitySignal(safety("en")).check(d) is None
    assert d["signals"]["safety"]["toxicity"] < 0.5
    zh = doc(MEDICAL_ZH)
    assert ToxicitySignal(safety("zh")).check(zh) is None
    assert zh["signals"]["safety"]["toxicity_model"] == "none"


# ---------------------------------------------------------------------------------------------- the recipe


def test_recipe_validates_safety_settings() -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        load_l1_settings("en", {"safety": {"hard_treshold": 1}})
    with pytest.raises(ValueError, match="toxicity_threshold"):
        load_l1_settings("en", {"safety": {"toxicity_threshold": 1.5}})
    with pytest.raises(ValueError, match="not found"):
        load_l1_settings("en", {"safety": {"url_banned_words": ["url_terms/missing.txt"]}})
    with pytest.raises(ValueError, match="bad regular expression"):
        load_l1_settings("zh", {"safety": {"content_terms": {"zh": {"adult": {"hard": ["re:(unclosed"]}}}}})


def test_a_changed_list_changes_the_fingerprint(tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("bad-domain.example\n")
    overrides = {"safety": {"url_blocklists": {"adult": [str(extra)]}}}
    before = load_l1_settings("en", overrides)
    assert lists_version(before.safety) == lists_version(load_l1_settings("en", overrides).safety)
    fingerprint = before.fingerprint
    assert URLSafetyFilter(before.safety).check(doc("t", "http://another.example/x")) is None
    extra.write_text("bad-domain.example\nanother.example\n")
    after = load_l1_settings("en", overrides)
    assert after.fingerprint != fingerprint
    assert URLSafetyFilter(after.safety).check(doc("t", "http://another.example/x"))[0] == \
        "safety:url_blocklist:adult"


def test_inline_terms_override_per_run() -> None:
    text = "zorblax zorblax zorblax is all this page says about zorblax"
    assert ContentSafetyFilter(safety("en")).check(doc(text)) is None
    custom = safety("en", content_terms={"en": {"spam": {"hard": ["zorblax"]}}})
    assert ContentSafetyFilter(custom).check(doc(text))[0] == "safety:content_terms:spam"


# ------------------------------------------------------------------------------------- the demo partition


def test_demo_zh_adult_and_gambling_pages_never_reach_l1(tmp_path: Path) -> None:
    store = TierStore(tmp_path / "data")
    ref = PartitionRef("L0", "zh", "b1")
    entries = [SourceEntry("cc-zh", "zh", "warc", str(DEMO_ZH / "cc-main-2020-34-excerpt.warc.gz"),
                           relpath="cc-main-2020-34-excerpt.warc.gz")]
    ingest_partition(store, ref, entries)
    recipe = load_l1_settings("zh", {"dedup": {"semantic": False}})
    result, stats = run_l1_partition(store, recipe, "b1")
    kept_urls = {d["url"] for d in result.kept}
    rejected = {d["url"]: d for d in result.rejected}
    assert ADULT_DEMO_URL not in kept_urls and GAMBLING_DEMO_URL not in kept_urls
    assert rejected[ADULT_DEMO_URL]["stage"] == "safety_content"
    assert rejected[ADULT_DEMO_URL]["reason"] == "safety:content_terms:adult"
    assert rejected[GAMBLING_DEMO_URL]["reason"] == "safety:content_terms:gambling"
    written = store.read(PartitionRef("L1", "zh", "b1"), kind="rejected").to_pylist()
    reasons = {r["url"]: r["reason"] for r in written}
    assert reasons[ADULT_DEMO_URL] == "safety:content_terms:adult"
    assert reasons[GAMBLING_DEMO_URL] == "safety:content_terms:gambling"
    assert stats.reasons["safety_content:safety:content_terms:adult"] >= 1


def test_zh_latin_terms_match_whole_words_only() -> None:
    # "bbin" (a gambling brand) is a zh hard term; "robbing" in an English quote of a Chinese news page is not it
    text = "警方通报：三名男子因 robbing 商店被捕。" + "新闻报道称，案件正在调查中。" * 2 + " robbing robbing"
    d = doc(text)
    assert ContentSafetyFilter(safety("zh")).check(d) is None
    assert "gambling" not in d["signals"]["safety"]["terms"]
    verdict = ContentSafetyFilter(safety("zh")).check(doc("bbin 真人娱乐 百家乐 注册送彩金"))
    assert verdict is not None and verdict[0] == "safety:content_terms:gambling"
