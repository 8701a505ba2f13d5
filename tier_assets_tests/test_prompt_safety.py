"""The LLM prompt guard (defence in depth behind L1 content safety): an unsafe prompt never reaches the
model, its slot gets a refusal that names the L1 category, safe prompts run unchanged, and the L2
annotator turns a refusal into an unscored annotation with the reason ``safety:prompt:<category>``."""

from __future__ import annotations

import math

import pytest

from tier_assets.curation.l1.safety import ContentSafetyFilter
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.l2.annotate import Annotator
from tier_assets.curation.models.llm import (
    Generation,
    TransformersLLM,
    load_llm,
    refusal_reason,
    unsafe_category,
)

ADULT_ZH = "严选免费成人小说\n巨乳菲佣 我上了漂亮的女经理 一次刺激的偷情 人妻的秘密 乱伦小说 自拍偷拍"
GAMBLING_ZH = "新一轮的赔付活动继续上线，充值300，600、1000计划跟上，赚取一倍流水，即可提现带走。百家乐 真人娱乐 老虎机"
ADULT_EN = "Watch free hardcore porn videos, xxx pussy and blowjob clips, hot milf porn and anal sex live cams."
MEDICAL_EN = ("Erectile dysfunction and breast cancer screening: your doctor may ask about sexual health, "
              "vaginal bleeding and pregnancy. Most cases are treatable. ") * 4
SAFE_ZH = "今天天气很好，我们去公园散步，看到很多人在放风筝。" * 4


class ModelInputs(TransformersLLM):
    """The real SmolLM2, recording what reaches the model itself (token sequences), below the guard."""

    def __init__(self, inner: TransformersLLM):
        self.__dict__.update(inner.__dict__)
        self.seen: list[int] = []

    def generate_ids(self, seqs, *args, **kwargs):
        self.seen.append(len(seqs))
        return super().generate_ids(seqs, *args, **kwargs)

    def forward_logits(self, seqs, *args, **kwargs):
        self.seen.append(len(seqs))
        return super().forward_logits(seqs, *args, **kwargs)


@pytest.fixture(scope="module")
def smollm() -> TransformersLLM:
    llm = load_llm()
    assert isinstance(llm, TransformersLLM)
    return llm


@pytest.mark.parametrize(("text", "category"), [(ADULT_ZH, "adult"), (GAMBLING_ZH, "gambling"), (ADULT_EN, "adult")])
def test_guard_uses_the_l1_content_lists(text: str, category: str) -> None:
    assert unsafe_category(text) == category
    language = "en" if text is ADULT_EN else "zh"
    l1 = ContentSafetyFilter(load_l1_settings(language).safety).check({"text": text, "url": None, "signals": {}})
    assert l1 is not None and l1[0] == f"safety:content_terms:{category}"


@pytest.mark.parametrize("text", [MEDICAL_EN, SAFE_ZH, "Summarise the passage in one sentence."])
def test_guard_passes_safe_prompts_and_hard_negatives(text: str) -> None:
    assert unsafe_category(text) is None


def test_unsafe_prompt_is_refused_before_the_model_and_safe_ones_run_unchanged(smollm: TransformersLLM) -> None:
    llm = ModelInputs(smollm)
    safe = "Name one colour."
    chat_unsafe = [{"role": "system", "content": "You rate web pages."}, {"role": "user", "content": ADULT_ZH}]
    gens = llm.generate([safe, chat_unsafe, GAMBLING_ZH], max_new_tokens=6)
    assert [refusal_reason(g) for g in gens] == [None, "safety:prompt:adult", "safety:prompt:gambling"]
    assert gens[1] == Generation("", 0, 0, "safety:prompt:adult")
    assert llm.seen == [1]  # one model call, with only the safe prompt
    llm.prompt_guard = False
    unguarded = llm.generate([safe], max_new_tokens=6)
    assert unguarded == [gens[0]]  # the guard does not change a safe prompt's answer

    llm.prompt_guard = True
    llm.seen.clear()
    lps = llm.next_token_logprobs([ADULT_EN, "Is the sky blue? Answer Yes or No."], candidates=["Yes", "No"])
    assert lps[0] == {"Yes": -math.inf, "No": -math.inf}
    assert all(math.isfinite(v) for v in lps[1].values()) and llm.seen == [1]
    ppl = llm.perplexity([ADULT_ZH, "The cat sat on the mat."])
    assert math.isnan(ppl[0]) and ppl[1] > 1


def test_l2_annotator_records_the_refusal_reason(smollm: TransformersLLM) -> None:
    llm = ModelInputs(smollm)
    annotations = Annotator(llm, domain="zh", with_tags=False).annotate([ADULT_ZH, SAFE_ZH])
    refused, safe = annotations
    assert refused.score is None and refused.judge_score is None
    assert refused.reason == "safety:prompt:adult"
    assert safe.reason is None or not safe.reason.startswith("safety:prompt:")
    assert safe.judge_score is not None or safe.reason  # scored, or unscored with its own reason


def test_l3_rejects_a_refused_document_with_the_safety_reason(smollm: TransformersLLM) -> None:
    from tier_assets.curation.l3.refine import refine_partition
    from tier_assets.curation.l3.settings import L3Settings
    from tier_assets.curation.models.embedder import get_embedder

    llm = ModelInputs(smollm)
    text = (ADULT_EN + " ") * 6
    doc = {"doc_id": "unsafe-1", "parent_ids": [], "tier": "L2", "domain": "en", "batch": "b1", "text": text,
           "score": 4.0, "signals": {}, "models": {}}
    config = L3Settings(formats={"en": ["qa"]}, max_new_tokens=24, min_new_tokens=8, batch_size=1,
                      max_source_chars=400, budget_tokens=6000)
    kept, rejected, stats = refine_partition([doc], llm, get_embedder(), config)
    assert kept == [] and llm.seen == []  # the model never saw the prompt
    assert [(r["stage"], r["reason"]) for r in rejected] == [("l3_safety", "safety:prompt:adult")]
    assert rejected[0]["parent_ids"] == ["unsafe-1"]


def test_guard_takes_no_chinese_density_of_english_text() -> None:
    # a real crime report (sfgate.com, bench set): "robbing" three times, no Han character
    text = ("Police say the man was robbing a store when he was stabbed. Witnesses saw two men robbing "
            "passers-by earlier; a third was arrested for robbing a bank in 2017.")
    assert unsafe_category(text) is None


def test_cached_answers_never_bypass_the_guard(smollm: TransformersLLM, tmp_path) -> None:
    """An answer cached while the guard was off is not replayed to a guarded run: the guard is in the key."""
    from tier_assets.curation import llm_cache

    cache = llm_cache.LLMCache(tmp_path / "calls.jsonl")
    request = [llm_cache.Request("doc-1", "l3:test", ADULT_EN)]
    smollm.prompt_guard = False
    try:
        unguarded = llm_cache.generate(smollm, cache, request, "v1", max_new_tokens=2)[0]
    finally:
        smollm.prompt_guard = True
    assert refusal_reason(unguarded) is None and unguarded.tokens_out > 0
    guarded = llm_cache.generate(smollm, cache, request, "v1", max_new_tokens=2)[0]
    assert refusal_reason(guarded) == "safety:prompt:adult"
