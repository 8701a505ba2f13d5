"""L1 dedup: exact / MinHash / semantic stages, cross-batch determinism, twins, config, cluster SQL.

Real documents from shared/data; the embedder loads once for the module.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from tier_assets.curation.catalog import connect
from tier_assets.curation.l1.dedup import Dedup, DedupConfig, compute_signatures, dedup, normalize
from tier_assets.curation.models.vectors import faiss_device, make_index, range_neighbors
from tier_assets.curation.pipeline import Pipeline
from tier_assets.curation.schema import empty_record
from tier_assets.curation.storage import PartitionRef, TierStore

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SQL = Path(__file__).resolve().parents[1] / "sql" / "dup_cluster.sql"
MINHASH_ONLY = DedupConfig(semantic=False)


def doc(doc_id: str, text: str, batch: str = "b1") -> dict[str, Any]:
    return {"doc_id": doc_id, "batch": batch, "text": text}


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = normalize(text).split()
    return set(zip(*(words[i:] for i in range(n)), strict=False))


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def run(docs: list[dict], config: DedupConfig, earlier: list | None = None, embedder: Any = None):
    sigs = compute_signatures(docs, config, embedder)
    return dedup(docs, sigs, earlier or [], config), sigs


def verdicts(result) -> dict[str, tuple[str, str | None]]:
    """doc_id -> (stage or 'kept', twin)."""
    out = {d["doc_id"]: ("kept", None) for d in result.kept}
    out.update({d["doc_id"]: (d["stage"], d["signals"]["dedup"]["dup_twin"]) for d in result.rejected})
    return out


@pytest.fixture(scope="module")
def demo() -> list[str]:
    with open(DATA / "dedup" / "data-juicer-dedup-demo.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


@pytest.fixture(scope="module")
def web() -> list[str]:
    """Thirty real web documents (mostly English) of 150+ words, none a near-duplicate of another."""
    out: list[str] = []
    with gzip.open(DATA / "web" / "cc-main-2019-30-dolma.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["text"]
            if len(text.split()) >= 150 and all(jaccard(text, o) < 0.3 for o in out):
                out.append(text)
            if len(out) == 30:
                break
    return out


@pytest.fixture(scope="module")
def embedder():
    from tier_assets.curation.models.embedder import get_embedder

    return get_embedder()


def edited(text: str, seed: int) -> str:
    """A realistic near-duplicate: boilerplate around it, a paragraph moved, a few typos, 85% kept."""
    rng = random.Random(seed)
    text = text[: text.find(" ", int(len(text) * 0.85))]
    paragraphs = text.split("\n")
    if len(paragraphs) >= 3:
        paragraphs.insert(rng.randrange(len(paragraphs)), paragraphs.pop(rng.randrange(len(paragraphs))))
    words = "\n".join(paragraphs).split(" ")
    for i in rng.sample(range(len(words)), max(1, len(words) // 150)):
        words[i] = words[i][::-1]
    return "Skip to main content\nHome | About | Contact\n" + " ".join(words) + "\nShare this:\nTwitter\nFacebook"


# ---------------------------------------------------------------- config and signatures


@pytest.mark.parametrize("kwargs, message", [
    ({"bands": 0}, "bands"),
    ({"rows": -1}, "rows"),
    ({"ngram": 2.5}, "ngram"),
    ({"jaccard_threshold": 0.0}, "jaccard_threshold"),
    ({"jaccard_threshold": 1.5}, "jaccard_threshold"),
    ({"cosine_threshold": -0.2}, "cosine_threshold"),
    ({"seed": -1}, "seed"),
    ({"bands": 100, "rows": 100}, "bands \\* rows"),
    ({"exact": False, "minhash": False, "semantic": False}, "at least one"),
])
def test_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DedupConfig(**kwargs)


def test_config_defaults() -> None:
    cfg = DedupConfig()
    assert (cfg.bands, cfg.rows, cfg.num_perm) == (20, 5, 100)
    assert (cfg.jaccard_threshold, cfg.cosine_threshold) == (0.7, 0.95)
    assert "num_perm=100" in cfg.minhash_fingerprint


def test_normalize_lowercases_strips_punctuation_and_collapses_space() -> None:
    assert normalize("Hello,  World!\n\tIt's  a—test… 😀 ok_x") == "hello world it s a test ok x"
    assert normalize("你好，世界！") == "你好 世界"


def test_signatures_schema_and_determinism(web: list[str]) -> None:
    docs = [doc(f"w{i}", t) for i, t in enumerate(web[:5])] + [doc("empty", "")]
    sigs = compute_signatures(docs, MINHASH_ONLY)
    assert sigs.column_names == ["doc_id", "batch", "order", "exact_hash", "minhash"]
    assert str(sigs.schema.field("minhash").type) == "list<item: uint32>"
    assert sigs["order"].to_pylist() == list(range(6))
    assert {len(m) for m in sigs["minhash"].to_pylist()} == {100}
    assert sigs["minhash"].to_pylist()[-1] == [0xFFFFFFFF] * 100  # no shingles
    assert compute_signatures(docs, MINHASH_ONLY).equals(sigs)
    other = compute_signatures(docs, DedupConfig(semantic=False, seed=1))
    assert other["minhash"].to_pylist()[0] != sigs["minhash"].to_pylist()[0]


def test_minhash_estimates_jaccard(web: list[str]) -> None:
    pairs = [(web[i], edited(web[i], i)) for i in range(10)] + [(web[i], web[i + 1]) for i in range(10)]
    for a, b in pairs:
        sa, sb = (np.array(s) for s in compute_signatures([doc("a", a), doc("b", b)], MINHASH_ONLY)["minhash"]
                  .to_pylist())
        assert abs(float(np.mean(sa == sb)) - jaccard(a, b)) < 0.15


# ---------------------------------------------------------------- stages


def test_exact_duplicates_name_their_twin(demo: list[str]) -> None:
    docs = [doc(f"d{i}", t) for i, t in enumerate(demo)]
    docs.append(doc("shouty", demo[1].upper().replace(" ", "   ") + "!!"))
    result, _ = run(docs, MINHASH_ONLY)
    v = verdicts(result)
    assert v["d11"] == ("dedup_exact", "d6") and v["shouty"] == ("dedup_exact", "d1")
    rejected = {d["doc_id"]: d for d in result.rejected}
    assert rejected["d11"]["reason"] == "exact_duplicate"
    assert rejected["d11"]["detail"] == "twin=d6 batch=b1 jaccard=1.00"
    assert rejected["d11"]["signals"]["dedup"] == {
        "dup_twin": "d6", "dup_twin_batch": "b1", "dup_method": "exact", "dup_cluster": "d6", "dup_similarity": 1.0}
    assert len(result.kept) + len(result.rejected) == len(docs)


def test_minhash_near_duplicates_in_demo_including_chinese(demo: list[str]) -> None:
    result, _ = run([doc(f"d{i}", t) for i, t in enumerate(demo)], MINHASH_ONLY)
    v = verdicts(result)
    assert v["d8"] == ("dedup_minhash", "d7")
    assert v["d10"] == ("dedup_minhash", "d9")
    assert v["d13"] == ("dedup_minhash", "d12")  # character shingles: Chinese has no spaces
    assert v["d9"] == ("kept", None)  # half of d7: Jaccard about 0.5, not a near-duplicate
    assert v["d5"] == ("kept", None)  # one word added to a short sentence: left to the semantic stage
    near = next(d for d in result.rejected if d["doc_id"] == "d8")
    assert near["reason"] == "near_duplicate" and near["detail"].startswith("twin=d7 batch=b1 jaccard=0.")


def test_minhash_catches_realistic_edits_and_keeps_distinct_docs(web: list[str]) -> None:
    originals = [doc(f"w{i}", t) for i, t in enumerate(web)]
    copies = [doc(f"e{i}", edited(t, i)) for i, t in enumerate(web[:20])]
    result, _ = run(originals + copies, MINHASH_ONLY)
    v = verdicts(result)
    assert all(v[f"w{i}"] == ("kept", None) for i in range(len(web)))
    caught = [i for i in range(20) if v[f"e{i}"] == ("dedup_minhash", f"w{i}")]
    assert len(caught) >= 18
    for d in result.rejected:
        assert d["signals"]["dedup"]["dup_similarity"] >= 0.6


def test_semantic_stage_catches_paraphrase_not_unrelated(demo: list[str], embedder: Any) -> None:
    docs = [doc("sunday", demo[0]), doc("coffee", demo[1]), doc("paper", demo[6]), doc("sunday2", demo[5])]
    result, sigs = run(docs, DedupConfig(), embedder=embedder)
    assert sigs.column_names[-1] == "embedding" and len(sigs["embedding"][0]) == 3 * embedder.dim
    assert verdicts(result) == {"sunday": ("kept", None), "coffee": ("kept", None), "paper": ("kept", None),
                                "sunday2": ("dedup_semantic", "sunday")}
    rej = result.rejected[0]
    assert rej["reason"] == "semantic_duplicate" and rej["signals"]["dedup"]["dup_method"] == "semantic"
    assert rej["signals"]["dedup"]["dup_similarity"] > 0.95 and "cosine=0.9" in rej["detail"]

    original = "The company knew of its first infection on March 24 or earlier. The virus spread exponentially."
    reworded = "The firm was aware of its first infection on or before March 24, and the virus then spread exponentially."
    unrelated = "Smithfield employs 3,700 people at its plant in Sioux Falls, South Dakota."
    pair = [doc("o", original), doc("p", reworded), doc("u", unrelated)]
    strict, _ = run(pair, DedupConfig(), embedder=embedder)
    assert not strict.rejected  # cosine about 0.94, under the 0.95 default
    loose, _ = run(pair, DedupConfig(cosine_threshold=0.9), embedder=embedder)
    assert verdicts(loose) == {"o": ("kept", None), "p": ("dedup_semantic", "o"), "u": ("kept", None)}


def stack_exchange_thread(index: int) -> tuple[str, str]:
    """(question, replies) of a real Stack Exchange thread."""
    with open(DATA / "math" / "stackexchange-sample-a.jsonl", encoding="utf-8") as fh:
        text = [json.loads(line)["text"] for line in fh][index]
    cut = text.index("\nA:")
    return text[:cut], text[cut:]


def token_count(embedder: Any, text: str) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(embedder.path)(text, add_special_tokens=False)["input_ids"])


def test_semantic_stage_judges_whole_documents_not_their_opening(web: list[str], embedder: Any) -> None:
    """A shared opening (a lede, a first post) of 256+ tokens is no semantic duplicate; light edits throughout are."""
    long_doc = max(web, key=len)
    opening = long_doc[:long_doc.find(" ", 1400)]
    assert token_count(embedder, opening) >= 300  # more than the model reads at once
    other_body = next(t for t in web if t != long_doc and len(t) > 1500)
    question, replies = stack_exchange_thread(5)
    _, other_replies = stack_exchange_thread(8)
    assert token_count(embedder, question) >= 300
    words = long_doc.split(" ")
    for i in range(0, len(words), 50):  # a typo in one word of 50, beginning to end
        words[i] = words[i][::-1]
    light_edits = " ".join(words)
    docs = [doc("article", long_doc), doc("same_lede", opening + "\n" + other_body),
            doc("thread", question + replies), doc("same_question", question + other_replies),
            doc("article_edited", light_edits)]
    semantic_only = DedupConfig(exact=False, minhash=False)
    result, sigs = run(docs, semantic_only, embedder=embedder)
    assert verdicts(result) == {"article": ("kept", None), "same_lede": ("kept", None), "thread": ("kept", None),
                                "same_question": ("kept", None), "article_edited": ("dedup_semantic", "article")}
    assert result.rejected[0]["signals"]["dedup"]["dup_similarity"] >= 0.95
    combined, _ = run(docs, DedupConfig(), embedder=embedder)
    assert {d["doc_id"] for d in combined.rejected} == {"article_edited"}


def test_windows_reach_the_end_and_one_window_fits_a_short_text(web: list[str], embedder: Any) -> None:
    long_doc = max(web, key=len)
    spans = embedder.window_spans(long_doc, 3)
    assert len(spans) == 3 and spans[0][0] == 0 and spans[-1][1] == len(long_doc.rstrip())
    assert spans[0][1] < spans[1][0] and spans[1][1] < spans[2][0]  # a long text: windows apart
    assert all(len(embedder._token_offsets(long_doc[a:b])) == 254 for a, b in spans)
    short = "The company knew of its first infection on March 24 or earlier."
    assert embedder.window_spans(short, 3) == [(0, len(short))]
    vectors = embedder.encode_windows([short, long_doc], 3)
    assert vectors.shape == (2, 3, embedder.dim)
    assert np.allclose(vectors[0, 0], vectors[0, 2]) and not np.allclose(vectors[1, 0], vectors[1, 2])
    assert np.allclose(vectors[0, 0], embedder.encode([short])[0], atol=1e-6)
    with pytest.raises(ValueError, match="embed_windows"):
        DedupConfig(embed_windows=0)


def test_signatures_must_match_config_and_docs(web: list[str]) -> None:
    docs = [doc("a", web[0])]
    with pytest.raises(ValueError, match="lack columns"):
        dedup(docs, compute_signatures(docs, MINHASH_ONLY), [], DedupConfig())
    with pytest.raises(ValueError, match="num_perm=100"):
        dedup(docs, compute_signatures(docs, DedupConfig(semantic=False, rows=6)), [], MINHASH_ONLY)
    with pytest.raises(ValueError, match="do not match"):
        dedup(docs, compute_signatures([doc("b", web[0])], MINHASH_ONLY), [], MINHASH_ONLY)


# ---------------------------------------------------------------- across batches


def batched_corpus(web: list[str]) -> dict[str, list[dict]]:
    """Three batches with duplicates pointing both ways in time."""
    return {
        "2024-01": [doc("a1", web[0], "2024-01"), doc("a2", web[1], "2024-01"), doc("a3", edited(web[4], 3), "2024-01")],
        "2024-02": [doc("b1", edited(web[0], 1), "2024-02"), doc("b2", web[2], "2024-02"),
                    doc("b3", web[1].upper(), "2024-02")],
        "2024-03": [doc("c1", web[4], "2024-03"), doc("c2", edited(web[0], 2), "2024-03"),
                    doc("c3", web[3], "2024-03"), doc("c4", web[3] + "\n", "2024-03")],
    }


def materialize(batches: dict[str, list[dict]], order: list[str], config: DedupConfig, tmp: Path) -> dict:
    """Dedup batches in ``order``, computing and caching (as Parquet) signatures on demand."""
    def sigs_of(key: str):
        path = tmp / f"{key}.parquet"
        if not path.exists():
            pq.write_table(compute_signatures(batches[key], config), path)
        return pq.read_table(path)

    out = {}
    for key in order:
        docs = [dict(d) for d in batches[key]]
        earlier = [sigs_of(k) for k in sorted(batches) if k != key]  # later batches are ignored by dedup
        out[key] = verdicts(dedup(docs, sigs_of(key), earlier, config))
    return out


def test_cross_batch_result_is_independent_of_materialization_order(web: list[str], tmp_path: Path) -> None:
    batches = batched_corpus(web)
    results = []
    for n, order in enumerate((["2024-01", "2024-02", "2024-03"], ["2024-03", "2024-01", "2024-02"],
                               ["2024-02", "2024-03", "2024-01"])):
        (tmp_path / str(n)).mkdir()
        results.append(materialize(batches, order, MINHASH_ONLY, tmp_path / str(n)))
    assert results[0] == results[1] == results[2]
    r = results[0]
    assert r["2024-01"] == {"a1": ("kept", None), "a2": ("kept", None), "a3": ("kept", None)}  # a3's twin is later
    assert r["2024-02"] == {"b1": ("dedup_minhash", "a1"), "b2": ("kept", None), "b3": ("dedup_exact", "a2")}
    assert r["2024-03"] == {"c1": ("dedup_minhash", "a3"), "c2": ("dedup_minhash", "a1"),
                            "c3": ("kept", None), "c4": ("dedup_exact", "c3")}


def test_twin_is_the_kept_cluster_root_across_batches(web: list[str]) -> None:
    x = doc("x", web[5], "b1")
    y = doc("y", edited(web[5], 7), "b2")  # near-duplicate of x: rejected
    z = doc("z", y["text"].lower(), "b3")  # exact copy of rejected y: twin must be x, kept
    s1 = compute_signatures([x], MINHASH_ONLY)
    s2 = compute_signatures([y], MINHASH_ONLY)
    result, _ = run([z], MINHASH_ONLY, earlier=[s2, s1])
    z_out = result.rejected[0]
    assert z_out["stage"] == "dedup_exact"
    assert z_out["signals"]["dedup"]["dup_twin"] == "x" and z_out["signals"]["dedup"]["dup_twin_batch"] == "b1"
    assert z_out["detail"].startswith("twin=x batch=b1 jaccard=")


def test_dedup_step_in_pipeline_exposes_signatures(web: list[str]) -> None:
    earlier = compute_signatures([doc("old", web[6], "b0")], MINHASH_ONLY)
    step = Dedup(MINHASH_ONLY, [earlier])
    pipe = Pipeline([step])
    result = pipe.run([doc("new", edited(web[6], 1)), doc("other", web[7])])
    assert verdicts(result) == {"new": ("dedup_minhash", "old"), "other": ("kept", None)}
    assert step.signatures is not None and step.signatures["doc_id"].to_pylist() == ["new", "other"]
    stats = pipe.stats["dedup"]
    assert (stats.docs_in, stats.kept, stats.rejected) == (2, 1, 1)


# ---------------------------------------------------------------- cluster SQL


def test_dup_cluster_sql_lists_kept_twin_and_members(web: list[str], tmp_path: Path) -> None:
    batches = batched_corpus(web)
    store = TierStore(tmp_path / "data")
    cache: list = []
    for key in sorted(batches):
        docs = [dict(d, domain="en", tier="L1") for d in batches[key]]
        sigs = compute_signatures(docs, MINHASH_ONLY)
        result = dedup(docs, sigs, cache, MINHASH_ONLY)
        cache.append(sigs)
        ref = PartitionRef("L1", "en", key)
        store.write(ref, [empty_record(**d) for d in result.kept])
        store.write(ref, [dict(empty_record(**d), stage=d["stage"], reason=d["reason"], detail=d["detail"])
                          for d in result.rejected], kind="rejected")
    con = connect(store)
    sql = SQL.read_text()
    cols = ["doc_id", "domain", "batch", "role", "stage", "method", "similarity", "twin_batch", "cluster_id",
            "cluster_size", "text_preview"]

    def cluster(doc_id: str) -> list[dict]:
        return [dict(zip(cols, row, strict=True)) for row in con.execute(sql, [doc_id]).fetchall()]

    via_member = cluster("c2")
    assert via_member == cluster("a1") == cluster("b1")
    assert [(r["doc_id"], r["role"], r["method"]) for r in via_member] == [
        ("a1", "kept", None), ("b1", "duplicate", "minhash"), ("c2", "duplicate", "minhash")]
    assert all(r["cluster_id"] == "a1" and r["cluster_size"] == 3 and r["domain"] == "en" for r in via_member)
    assert via_member[0]["text_preview"] == web[0][:120]
    assert all(0.6 <= r["similarity"] <= 1.0 and r["twin_batch"] == "2024-01" for r in via_member[1:])
    assert [(r["doc_id"], r["role"], r["stage"]) for r in cluster("c3")] == [
        ("c3", "kept", None), ("c4", "duplicate", "dedup_exact")]
    assert [r["role"] for r in cluster("b2")] == ["kept"]


# ---------------------------------------------------------------- vectors


def test_make_index_device_and_validation() -> None:
    index = make_index(8)
    assert index.device == faiss_device() and index.kind == "flat" and index.ntotal == 0
    with pytest.raises(ValueError, match="kind"):
        make_index(8, kind="hnsw")
    with pytest.raises(ValueError, match="dim"):
        make_index(0)


def test_range_neighbors_is_complete_beyond_k() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((200, 16)).astype(np.float32)
    base[:40] = base[0] + 0.01 * rng.standard_normal((40, 16))  # 40 near-identical vectors
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index = make_index(16)
    index.add(base)
    lims, ids, sims = range_neighbors(index, base[:3], 0.95, k=4)
    brute = base[:3] @ base.T
    for q in range(3):
        expected = set(np.flatnonzero(brute[q] >= 0.95).tolist())
        assert len(expected) >= 40
        assert set(ids[lims[q]:lims[q + 1]].tolist()) == expected
        assert np.all(np.diff(sims[lims[q]:lims[q + 1]]) <= 1e-6)


def test_ivf_index_trains_on_first_add() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = make_index(8, kind="ivf", nlist=4, nprobe=4)
    index.add(x)
    sims, ids = index.search(x[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4] and np.allclose(sims[:, 0], 1.0, atol=1e-5)
