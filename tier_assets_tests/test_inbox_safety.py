"""The inbox is untrusted: links, hardlinks, special files and odd names never make the inbox sensor
read, move or write anything outside the data root; each is set aside with a reason file."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from dagster import SkipReason, build_sensor_context

from tier_assets.curation.sources import (
    QUARANTINE,
    UNRECOGNIZED,
    InboxError,
    land_inbox,
    read_manifest,
    unsafe_name_reason,
)
from tier_assets.defs.resources import TierStoreResource
from tier_assets.defs.sensors import inbox_sensor

from .conftest import DEMO_DATA

GOOD = DEMO_DATA / "math" / "stackexchange-sample-a.jsonl"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files outside the data root that a hostile drop points at."""
    folder = tmp_path / "outside"
    (folder / "secrets").mkdir(parents=True)
    shutil.copy(GOOD, folder / "private.jsonl")
    shutil.copy(GOOD, folder / "secrets" / "keys.jsonl")
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``folder``: inode, link count and bytes (to show nothing there moved or changed)."""
    return {str(p.relative_to(folder)): (p.lstat().st_ino, p.lstat().st_nlink, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _reason(path: Path) -> str:
    return Path(f"{path}.reason.txt").read_text(encoding="utf-8")


def _tick(root: Path, instance):
    resources = {"tier_store": TierStoreResource(data_root=str(root))}
    with build_sensor_context(instance=instance, resources=resources) as ctx:
        return inbox_sensor(ctx)


def test_sensor_lands_plain_files_and_quarantines_every_unsafe_entry(dagster_instance, data_root, outside):
    inbox = data_root / "inbox"
    en, math = inbox / "en", inbox / "math"
    en.mkdir(parents=True)
    math.mkdir()
    shutil.copy(GOOD, math / "good.jsonl")
    shutil.copy(GOOD, math / "notes..v2.jsonl")  # dots inside a name are just dots
    (en / "link-to-file.jsonl").symlink_to(outside / "private.jsonl")  # absolute target, outside the root
    (en / "link-to-dir").symlink_to(outside / "secrets", target_is_directory=True)
    (en / "relative-link.jsonl").symlink_to(Path("..") / ".." / ".." / "outside" / "private.jsonl")
    os.link(outside / "private.jsonl", en / "hardlink.jsonl")
    shutil.copy(GOOD, en / "x\\..\\..\\escape.jsonl")
    shutil.copy(GOOD, en / "..\\..\\hidden.jsonl")  # starts with '.': hidden, so left alone like any
    shutil.copy(GOOD, en / "line\nbreak.jsonl")
    shutil.copy(GOOD, en / "ansi\x1b[31m.jsonl")
    shutil.copy(GOOD, en / "C:evil.jsonl")
    os.mkfifo(en / "pipe.jsonl")
    (math / "sub").mkdir()
    (math / "sub" / "deep-link.jsonl").symlink_to(outside / "private.jsonl")
    shutil.copy(GOOD, math / "sub" / "deep.jsonl")
    (inbox / "zh").symlink_to(outside / "secrets", target_is_directory=True)  # a linked domain folder
    (inbox / "fr").mkdir()  # not a domain
    shutil.copy(GOOD, inbox / "fr" / "french.jsonl")
    shutil.copy(GOOD, inbox / "loose.jsonl")  # not in any domain folder
    before = _snapshot(outside)  # (the hardlink above is one of its names)

    result = _tick(data_root, dagster_instance)

    # only the plain files in domain folders landed, and every landed path is a plain file inside the root
    (add,) = result.dynamic_partitions_requests
    (batch,) = add.partition_keys
    assert [r.partition_key for r in result.run_requests] == [f"{batch}|math"]
    manifest = read_manifest(data_root, batch)
    assert sorted(e.relpath for e in manifest.entries) == [
        "inbox/math/good.jsonl", "inbox/math/notes..v2.jsonl", "inbox/math/sub/deep.jsonl"]
    real_root = os.path.realpath(data_root)
    for e in manifest.entries:
        assert os.path.realpath(e.path).startswith(real_root + os.sep)
        assert stat.S_ISREG(os.lstat(e.path).st_mode)

    # nothing outside the root moved, changed or gained a link
    assert _snapshot(outside) == before

    q_en, q_math, q_top = inbox / QUARANTINE / "en", inbox / QUARANTINE / "math", inbox / QUARANTINE / "_no_domain"
    for name in ("link-to-file.jsonl", "link-to-dir", "relative-link.jsonl"):
        assert (q_en / name).is_symlink(), name  # the link itself was moved, still a link
        assert "symlink" in _reason(q_en / name)
    assert os.readlink(q_en / "link-to-file.jsonl") == str(outside / "private.jsonl")
    assert (q_math / "deep-link.jsonl").is_symlink()
    assert (q_top / "zh").is_symlink() and "symlink" in _reason(q_top / "zh")
    assert "hardlink" in _reason(q_en / "hardlink.jsonl")
    assert "backslash" in _reason(q_en / "x_.._.._escape.jsonl")
    assert "U+000A" in _reason(q_en / "line_break.jsonl")
    assert "entry: 'en/line\\nbreak.jsonl'" in _reason(q_en / "line_break.jsonl")  # the original name, escaped
    assert "U+001B" in _reason(q_en / "ansi_[31m.jsonl")
    assert "drive letter" in _reason(q_en / "C:evil.jsonl")
    assert stat.S_ISFIFO(os.lstat(q_en / "pipe.jsonl").st_mode) and "fifo" in _reason(q_en / "pipe.jsonl")
    unknown = inbox / UNRECOGNIZED / "_no_domain"
    assert (unknown / "fr" / "french.jsonl").is_file() and "not in a domain folder" in _reason(unknown / "fr")
    assert (unknown / "loose.jsonl").is_file() and "not in a domain folder" in _reason(unknown / "loose.jsonl")
    assert sorted(os.listdir(inbox)) == [QUARANTINE, UNRECOGNIZED, "en", "math"]
    assert os.listdir(en) == ["..\\..\\hidden.jsonl"] and os.listdir(math) == ["sub"] and os.listdir(math / "sub") == []

    # the next tick has nothing to do: set-aside entries are not picked up again
    dagster_instance.add_dynamic_partitions("batch", [batch])
    assert isinstance(_tick(data_root, dagster_instance), SkipReason)


def test_sensor_reports_set_aside_entries_when_nothing_lands(dagster_instance, data_root, outside):
    (data_root / "inbox" / "en").mkdir(parents=True)
    (data_root / "inbox" / "en" / "only-a-link.jsonl").symlink_to(outside / "private.jsonl")
    result = _tick(data_root, dagster_instance)
    assert isinstance(result, SkipReason)
    assert "1 entries set aside" in result.skip_message
    assert (data_root / "inbox" / QUARANTINE / "en" / "only-a-link.jsonl").is_symlink()


def test_undecodable_name_is_quarantined(data_root):
    en = data_root / "inbox" / "en"
    en.mkdir(parents=True)
    with open(os.path.join(os.fsencode(en), b"latin1-\xe9t\xe9.jsonl"), "wb") as fh:
        fh.write(GOOD.read_bytes())
    landing = land_inbox(data_root, data_root / "inbox", "b-1")
    assert landing.manifest is None
    (aside,) = landing.set_aside
    assert aside.reason == "name is not valid UTF-8"
    assert aside.moved_to.name == "latin1-_t_.jsonl" and aside.moved_to.is_file()


def test_hidden_and_partial_files_wait(data_root):
    en = data_root / "inbox" / "en"
    en.mkdir(parents=True)
    (en / ".still-copying.jsonl").write_text("{}")
    (en / "drop.jsonl.part").write_text("{}")
    (en / ".hidden-dir").mkdir()
    (en / ".hidden-dir" / "x.jsonl").write_text("{}")
    landing = land_inbox(data_root, data_root / "inbox", "b-1")
    assert landing.manifest is None and landing.set_aside == []
    assert sorted(os.listdir(en)) == [".hidden-dir", ".still-copying.jsonl", "drop.jsonl.part"]


def test_planted_quarantine_link_never_redirects_writes(data_root, outside):
    inbox = data_root / "inbox"
    (inbox / "en").mkdir(parents=True)
    (inbox / QUARANTINE).symlink_to(outside, target_is_directory=True)
    (inbox / "en" / "link.jsonl").symlink_to(outside / "private.jsonl")
    before = _snapshot(outside)
    with pytest.raises(InboxError, match="outside the data root"):
        land_inbox(data_root, inbox, "b-1")
    assert _snapshot(outside) == before and not (outside / "en").exists()
    assert (inbox / "en" / "link.jsonl").is_symlink()  # left where it was


def test_planted_reason_file_link_is_never_written_through(data_root, outside):
    inbox = data_root / "inbox"
    (inbox / "en").mkdir(parents=True)
    (inbox / "en" / "x.weird").write_text("?")
    bad = inbox / UNRECOGNIZED / "en"
    bad.mkdir(parents=True)
    (bad / "x.weird.reason.txt").symlink_to(outside / "private.jsonl")  # a trap for the reason file
    before = _snapshot(outside)
    (aside,) = land_inbox(data_root, inbox, "b-1").set_aside
    assert aside.moved_to != bad / "x.weird" and aside.moved_to.name.endswith("-x.weird")
    assert "unknown format" in _reason(aside.moved_to)
    assert _snapshot(outside) == before


def test_linked_inbox_is_refused(data_root, outside):
    (outside / "en").mkdir()
    shutil.copy(GOOD, outside / "en" / "a.jsonl")
    (data_root / "inbox").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    with pytest.raises(InboxError, match="inbox"):
        land_inbox(data_root, data_root / "inbox", "b-1")
    assert _snapshot(outside) == before


@pytest.mark.parametrize("batch", ["../escape", "/abs", "a/b", "..", "", "x\ny"])
def test_batch_key_cannot_leave_the_root(data_root, batch):
    (data_root / "inbox" / "en").mkdir(parents=True)
    shutil.copy(GOOD, data_root / "inbox" / "en" / "a.jsonl")
    with pytest.raises(ValueError, match="invalid batch key"):
        land_inbox(data_root, data_root / "inbox", batch)
    assert (data_root / "inbox" / "en" / "a.jsonl").is_file()


@pytest.mark.parametrize("name, reason", [
    ("plain.jsonl", None), ("a..b.jsonl", None), ("数据.jsonl", None),
    ("tab\there.jsonl", "U+0009"), ("rlo\u202egpj.jsonl", "U+202E"), ("a\\b.jsonl", "backslash"),
    ("D:data.jsonl", "drive letter"),
])
def test_unsafe_name_reason(name, reason):
    got = unsafe_name_reason(name)
    assert got is None if reason is None else reason in got
