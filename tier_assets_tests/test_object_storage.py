"""A data root on S3 (issue 15, item 5): tiers on a real S3-compatible server (moto in server mode).

The server runs on 127.0.0.1 with IAM authentication on, so refused credentials are real refusals.
The same inputs go through L0 -> L1 on a local root and on ``s3://``; the CLI's stats, lineage and
export must give the same answers on both. Partitions are published by commit markers: an upload
that no marker names (a writer killed before its marker) is invisible.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tier_assets.cli import main
from tier_assets.curation import object_partitions as objects
from tier_assets.curation.catalog import build_catalog, connect
from tier_assets.curation.l0 import ingest_partition
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.l1.tier import run_l1_partition
from tier_assets.curation.objectstore import ObjectStoreError
from tier_assets.curation.sources import SourceEntry
from tier_assets.curation.storage import PartitionRef, TierStore

from .conftest import DEMO_DATA

boto3 = pytest.importorskip("boto3", reason="moto[server] (the dev extra) runs the S3 server")
pytest.importorskip("moto.server", reason="moto[server] (the dev extra) runs the S3 server")

BUCKET = "tier-assets-test"
INPUTS = {"en": "en/redpajama-c4-sample.jsonl", "math": "math/stackexchange-sample-a.jsonl"}
NO_SEMANTIC_DEDUP = {"dedup": {"semantic": False}}  # no embedder: the test stays small and fast


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server with IAM auth on: the first 3 calls (making a user and its key) go unauthenticated."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.1)
        anon = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "boot",
                "aws_secret_access_key": "boot"}
        iam = boto3.client("iam", **anon)
        iam.create_user(UserName="curator")
        key = iam.create_access_key(UserName="curator")["AccessKey"]
        iam.put_user_policy(UserName="curator", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds)
        s3.create_bucket(Bucket=BUCKET)
        yield {"endpoint": endpoint, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "client": s3}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_env(s3_server, tmp_path, monkeypatch):
    """The environment a user sets for an s3:// data root; local state under the test's temp dir."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE", "TIER_ASSETS_DATA_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server["endpoint"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["secret"])
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("TIER_ASSETS_STATE_DIR", str(tmp_path / "state"))
    return s3_server


def _keys(client, prefix: str) -> list[str]:
    """Object keys under ``prefix``, without the empty ``dir/`` placeholder pyarrow leaves when it deletes."""
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed if not o["Key"].endswith("/"))


def _l0_l1(store: TierStore) -> None:
    """The library runners, as the Dagster assets call them: L0 then L1 of batch b1 for en and math."""
    for domain, src in INPUTS.items():
        ingest_partition(store, PartitionRef("L0", domain, "b1"),
                         [SourceEntry("demo", domain, "jsonl", str(DEMO_DATA / src), (), f"demo/{src}")])
        run_l1_partition(store, load_l1_settings(domain, NO_SEMANTIC_DEDUP), "b1")


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _records(store: TierStore) -> dict[str, list[dict]]:
    return {f"{ref}/{kind}": sorted(store.read(ref, kind).to_pylist(), key=lambda r: r["doc_id"])
            for kind in ("tiers", "rejected") for tier in ("L0", "L1") for ref in store.partitions(tier, kind)}


def test_l0_l1_on_s3_and_the_cli_reads_them_as_on_a_local_root(s3_env, tmp_path, capsys):
    local = TierStore(tmp_path / "local")
    remote = TierStore(f"s3://{BUCKET}/run1")
    _l0_l1(local)
    _l0_l1(remote)

    assert remote.root == (tmp_path / "state" / "s3" / BUCKET / "run1").resolve()  # what stays local
    assert not (remote.root / "tiers").exists() and not [p for p in remote.root.rglob("spool/**/*") if p.is_file()]
    assert remote.partitions("L1") == local.partitions("L1") == [PartitionRef("L1", d, "b1") for d in ("en", "math")]
    assert _records(remote) == _records(local)
    assert [remote.count(PartitionRef("L0", d, "b1")) for d in INPUTS] == [10, 10]
    keys = _keys(s3_env["client"], "run1/")
    assert len([k for k in keys if k.endswith(objects.MARKER_NAME)]) == 8  # L0 + L1, kept + rejected, 2 domains
    marker = json.loads(s3_env["client"].get_object(
        Bucket=BUCKET, Key="run1/tiers/L1/domain=en/batch=b1/_committed.json")["Body"].read())
    assert marker["rows"] == local.count(PartitionRef("L1", "en", "b1")) > 0
    assert f"run1/tiers/L1/domain=en/batch=b1/{marker['file']}" in keys

    def both(*argv: str) -> tuple[str, str]:
        outs = []
        for root in (local.uri, remote.uri):
            code, out, err = _cli(["--data-root", root, *argv], capsys)
            assert code == 0, err
            outs.append(out)
        return outs[0], outs[1]

    local_stats, remote_stats = both("stats")
    assert remote_stats == local_stats and "| L1 | en | b1 |" in remote_stats
    doc_id = local.read(PartitionRef("L1", "math", "b1"))["doc_id"][0].as_py()
    local_lineage, remote_lineage = both("lineage", doc_id, "--json")
    rows = json.loads(remote_lineage)
    assert rows == json.loads(local_lineage)
    assert [(r["direction"], r["tier"]) for r in rows] == [("down", "L1"), ("down", "L0")]

    manifests = []
    for name, root in (("local", local.uri), ("remote", remote.uri)):
        code, _, err = _cli(["--data-root", root, "export", "pretrain", "--out", str(tmp_path / name)], capsys)
        assert code == 0, err
        manifests.append(json.loads((tmp_path / name / "manifest.json").read_text()))
    assert manifests[1]["data_root"] == f"s3://{BUCKET}/run1"
    for key in ("delivered_docs", "delivered_tokens", "selection_sha256", "cells"):
        assert manifests[1][key] == manifests[0][key]
    assert manifests[1]["delivered_docs"] == sum(local.count(PartitionRef("L1", d, "b1")) for d in INPUTS) > 0
    assert [s["sha256"] for s in manifests[1]["shards"]] == [s["sha256"] for s in manifests[0]["shards"]]

    code, out, err = _cli(["--data-root", remote.uri, "report"], capsys)
    assert code == 0 and out.strip() == str(remote.root / "report.html"), err
    page = (remote.root / "report.html").read_text()
    assert f"<dd>s3://{BUCKET}/run1</dd>" in page and '<span class="badge on">L1</span>' in page

    script = build_catalog(remote).read_text()
    assert script.count("'s3://") == 8 and f"run1/tiers/L1/domain=en/batch=b1/{marker['file']}" in script


def test_a_crashed_write_is_invisible_and_the_last_commit_is_read(s3_env, tmp_path, monkeypatch):
    store = TierStore(f"s3://{BUCKET}/crash")
    ref = PartitionRef("L1", "en", "b1")
    first = [{"doc_id": f"d{i}", "tier": "L1", "domain": "en", "batch": "b1", "text": f"first {i}"} for i in range(3)]
    second = [{"doc_id": f"d{i}", "tier": "L1", "domain": "en", "batch": "b1", "text": f"second {i}"} for i in range(4)]
    store.write(ref, first)
    pkey = objects.partition_key(store.remote, "tiers", "L1", "en", "b1")
    marker_key = "crash/tiers/L1/domain=en/batch=b1/_committed.json"
    committed_marker = s3_env["client"].get_object(Bucket=BUCKET, Key=marker_key)["Body"].read()

    def dies_midway():
        yield from second[:2]
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        store.write(ref, dies_midway())
    # a writer killed after its upload and before its marker leaves an object no marker names
    other = TierStore(tmp_path / "scratch")  # the same bytes a writer of ``second`` spools
    other.write(ref, second)
    orphan, _, _ = objects.upload_data(store.remote, pkey, Path(other.partition_uri(ref)))
    assert f"crash/tiers/L1/domain=en/batch=b1/{orphan}" in _keys(s3_env["client"], "crash/")

    assert store.read(ref)["text"].to_pylist() == ["first 0", "first 1", "first 2"]
    assert store.count(ref) == 3 and store.partitions("L1") == [ref]
    con = connect(store)
    assert con.execute("select count(*), min(text) from l1").fetchall() == [(3, "first 0")]
    con.close()
    build_catalog(store)
    assert orphan not in store.catalog_path.read_text()

    store.write(ref, first)  # a re-run with the same output is idempotent: same object, same marker
    again_bytes = s3_env["client"].get_object(Bucket=BUCKET, Key=marker_key)["Body"].read()
    assert again_bytes == committed_marker
    store.write(ref, second)
    assert store.read(ref)["text"].to_pylist() == ["second 0", "second 1", "second 2", "second 3"]
    assert store.partition_uri(ref).endswith(orphan)  # identical bytes: the orphan upload is now the committed one
    first_file = f"crash/tiers/L1/domain=en/batch=b1/{json.loads(again_bytes)['file']}"
    assert first_file in _keys(s3_env["client"], "crash/")  # the replaced generation stays for readers

    monkeypatch.setattr(objects, "GRACE_S", -1)  # every superseded object counts as old
    store.write(ref, first[:1])
    left = _keys(s3_env["client"], "crash/")
    assert first_file not in left and len(left) == 3  # the marker, its file and the one it replaced (orphan's)
    assert store.partition_uri(ref).removeprefix(f"s3://{BUCKET}/") in left and f"crash/tiers/L1/domain=en/batch=b1/{orphan}" in left


def test_wrong_credentials_give_one_clear_error_and_write_nothing(s3_env, monkeypatch, capsys):
    uri = f"s3://{BUCKET}/badcreds"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = TierStore(uri)
    entry = SourceEntry("demo", "en", "jsonl", str(DEMO_DATA / INPUTS["en"]), (), "demo/en")
    with pytest.raises(ObjectStoreError) as err:
        ingest_partition(store, PartitionRef("L0", "en", "b1"), [entry])
    message = str(err.value)
    assert uri in message and s3_env["endpoint"] in message and "credentials were refused" in message
    assert "\n" not in message

    for argv in (["stats"], ["lineage", "abc"], ["export", "pretrain"]):
        code, out, err_text = _cli(["--data-root", uri, *argv], capsys)
        assert code == 2 and out == ""
        assert err_text.count("\n") == 1 and uri in err_text and "credentials were refused" in err_text

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    code, _, err_text = _cli(["--data-root", uri, "stats"], capsys)
    assert code == 2 and "endpoint cannot be reached" in err_text and "127.0.0.1" in err_text

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_env["endpoint"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env["secret"])
    assert TierStore(uri).partitions("L0") == [] and TierStore(uri).partitions("L0", "rejected") == []
    assert s3_env["client"].list_objects_v2(Bucket=BUCKET, Prefix="badcreds/")["KeyCount"] == 0
    code, _, err_text = _cli(["--data-root", f"s3://no-such-bucket-{os.getpid()}/x", "stats"], capsys)
    assert code == 2 and "does not exist" in err_text
