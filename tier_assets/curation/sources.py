"""The source registry and batch manifests.

A *source* (registry file, YAML) names a domain, a path or glob and a format.
A *batch* is one ingested drop: a manifest ``{root}/batches/{batch}.json`` lists
the files (per domain) that belong to it, so re-materializing a batch always
reads the same inputs. Batch keys sort in ingestion order (earlier batches win
in dedup), so generated keys are timestamps.
"""

from __future__ import annotations

import glob as globlib
import json
import os
import re
import stat
import sysconfig
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tier_assets.curation.atomic import write_json_atomic
from tier_assets.curation.readers import FORMATS, infer_format
from tier_assets.curation.schema import DOMAINS

DEFAULT_REGISTRY = Path(__file__).resolve().parents[1] / "recipes" / "sources.yaml"
STDLIB_TOKEN = "@stdlib"


@dataclass(frozen=True)
class SourceEntry:
    """One input of a batch: a file (or a code tree with ``include`` globs) in one domain."""

    source: str
    domain: str
    format: str
    path: str
    include: tuple[str, ...] = ()
    relpath: str = ""  # stable name used in doc ids and provenance

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"source {self.source!r}: unknown domain {self.domain!r} (known: {DOMAINS})")
        if self.format not in FORMATS:
            raise ValueError(f"source {self.source!r}: unknown format {self.format!r} (known: {FORMATS})")


@dataclass(frozen=True)
class SourceSpec:
    """A registry entry: name, domain, path or glob, format (and include globs for code trees)."""

    name: str
    domain: str
    path: str
    format: str
    include: tuple[str, ...] = ()
    description: str = ""


def _resolve(path: str, base: Path) -> str:
    if path.startswith(STDLIB_TOKEN):
        return sysconfig.get_paths()["stdlib"] + path[len(STDLIB_TOKEN):]
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else (base / p))


def load_registry(path: str | Path | None = None) -> list[SourceSpec]:
    """Parse the registry YAML (``sources: [{name, domain, path, format, include?}]``)."""
    reg = Path(path or os.environ.get("TIER_ASSETS_SOURCES") or DEFAULT_REGISTRY)
    data = yaml.safe_load(reg.read_text()) or {}
    specs = []
    for item in data.get("sources", []):
        missing = {"name", "domain", "path", "format"} - set(item)
        if missing:
            raise ValueError(f"{reg}: source {item.get('name', '?')!r} lacks {sorted(missing)}")
        specs.append(
            SourceSpec(
                name=item["name"], domain=item["domain"], path=_resolve(item["path"], reg.parent),
                format=item["format"], include=tuple(item.get("include", ())),
                description=item.get("description", ""),
            )
        )
    return specs


def expand(spec: SourceSpec) -> list[SourceEntry]:
    """The files a registry entry names (a glob may match many; a code tree stays one entry)."""
    if spec.format == "code":
        if not Path(spec.path).is_dir():
            raise FileNotFoundError(f"source {spec.name!r}: code tree {spec.path} is not a directory")
        return [SourceEntry(spec.name, spec.domain, "code", spec.path, spec.include, spec.name)]
    if not globlib.has_magic(spec.path):
        if not Path(spec.path).exists():  # refused now, not as a failed L0 run of a batch that cannot change
            raise FileNotFoundError(f"source {spec.name!r}: {spec.path} does not exist")
        matches = [spec.path]
    else:
        matches = sorted(globlib.glob(spec.path))
    if not matches:
        raise FileNotFoundError(f"source {spec.name!r}: nothing matches {spec.path}")
    return [SourceEntry(spec.name, spec.domain, spec.format, m, (), f"{spec.name}/{Path(m).name}") for m in matches]


@dataclass
class BatchManifest:
    batch: str
    created: str
    entries: list[SourceEntry] = field(default_factory=list)

    def for_domain(self, domain: str) -> list[SourceEntry]:
        return [e for e in self.entries if e.domain == domain]

    @property
    def domains(self) -> list[str]:
        return sorted({e.domain for e in self.entries})


def manifest_path(root: Path, batch: str) -> Path:
    return Path(root) / "batches" / f"{batch}.json"


def write_manifest(root: Path, manifest: BatchManifest) -> Path:
    """Write a batch manifest atomically; it never changes once the batch holds data (`demo.ensure_batch`)."""
    path = manifest_path(root, manifest.batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"batch": manifest.batch, "created": manifest.created,
            "entries": [{**asdict(e), "include": list(e.include)} for e in manifest.entries]}
    write_json_atomic(path, body, indent=1, ensure_ascii=False)
    return path


def read_manifest(root: Path, batch: str) -> BatchManifest:
    path = manifest_path(root, batch)
    if not path.exists():
        raise FileNotFoundError(f"batch {batch!r} has no manifest at {path}")
    body = json.loads(path.read_text())
    entries = [SourceEntry(**{**e, "include": tuple(e.get("include", ()))}) for e in body["entries"]]
    return BatchManifest(body["batch"], body["created"], entries)


def list_batches(root: Path) -> list[str]:
    return sorted(p.stem for p in (Path(root) / "batches").glob("*.json"))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_batch_key(prefix: str = "inbox") -> str:
    """A key that sorts in ingestion order: ``{prefix}-YYYYMMDDTHHMMSS-xxxx``."""
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:4]}"


def registry_entries(specs: list[SourceSpec]) -> list[SourceEntry]:
    """The files of every registry source: what a batch registered from the registry holds."""
    return [e for spec in specs for e in expand(spec)]


# --- the inbox -------------------------------------------------------------------------------------------
# Anything dropped into ``inbox/`` is untrusted. The inbox never follows a link, never moves anything
# that is not a plain file it listed itself, and never writes outside the data root: entries that are
# unsafe go to ``inbox/_quarantine/`` and files it cannot use go to ``inbox/_unrecognized/``, each with
# a ``NAME.reason.txt`` next to it.

QUARANTINE = "_quarantine"
UNRECOGNIZED = "_unrecognized"
NO_DOMAIN = "_no_domain"  # set-aside folder for entries found outside a domain folder
BATCH_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DRIVE_PREFIX = re.compile(r"[A-Za-z]:")


class InboxError(RuntimeError):
    """The inbox cannot be processed safely (it or a folder it writes to resolves outside the data root)."""


@dataclass(frozen=True)
class SetAside:
    """An inbox entry moved aside instead of landed: what it was, where it went, why."""

    name: str  # the entry's path under the inbox, as repr() shows it (control characters escaped)
    moved_to: Path
    reason: str


@dataclass
class InboxLanding:
    """What one pass over the inbox did: the new batch (None when nothing landed) and what was set aside."""

    manifest: BatchManifest | None
    set_aside: list[SetAside] = field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    path: Path
    domain: str | None
    stat: os.stat_result  # lstat: describes the entry itself, never a link's target


def _is_pending(name: str) -> bool:
    """Hidden and partial names are still being written: left alone until renamed."""
    return name.startswith(".") or name.endswith((".tmp", ".part"))


def unsafe_name_reason(name: str) -> str | None:
    """Why a file name must not travel into manifests, doc ids and exports, or None if it is fine."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "name is not valid UTF-8"
    controls = [c for c in name if unicodedata.category(c) in ("Cc", "Cf")]
    if controls:
        return f"control or format character U+{ord(controls[0]):04X} in the name"
    if "\\" in name:
        return "backslash in the name: other systems read it as a path separator (e.g. '..\\\\x')"
    if DRIVE_PREFIX.match(name):
        return "name looks like an absolute Windows path (drive letter)"
    return None


def _entry_problem(entry: Path, st: os.stat_result) -> str | None:
    """Why an inbox entry is unsafe to land (checked on lstat, so links are seen as links)."""
    if stat.S_ISLNK(st.st_mode):
        return f"symlink to {os.readlink(entry)!r}: the inbox never follows links; copy the file in instead"
    reason = unsafe_name_reason(entry.name)
    if reason:
        return reason
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return "not a regular file (fifo, socket or device)"
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        return (f"hardlink ({st.st_nlink} names for one file): its bytes could change from outside the inbox "
                "after landing, and a batch must always re-read the same input; copy the file in instead")
    return None


def _inside(path: Path, root: Path) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base + os.sep)


def _check_inside(path: Path, root: Path) -> None:
    if not _inside(path, root):
        raise InboxError(f"{path} resolves to {os.path.realpath(path)}, outside the data root {root}")


def _safe_dir(folder: Path, root: Path) -> Path:
    """Create ``folder`` and check it resolves inside ``root`` (a planted link must not redirect writes)."""
    _check_inside(folder, root)  # before creating anything through a planted link
    folder.mkdir(parents=True, exist_ok=True)
    _check_inside(folder, root)  # and after, in case a link was swapped in meanwhile
    return folder


def _printable(name: str) -> str:
    """``name`` with control, format, backslash and undecodable characters replaced by '_'."""
    return "".join("_" if c == "\\" or unicodedata.category(c) in ("Cc", "Cf", "Cs") else c for c in name)


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or a prefixed variant when that name or its reason file is taken."""
    dest = folder / name
    while os.path.lexists(dest) or os.path.lexists(f"{dest}.reason.txt"):
        dest = folder / f"{uuid.uuid4().hex[:6]}-{name}"
    return dest


def _write_reason(dest: Path, reason: str, original: str) -> None:
    """Write ``dest.reason.txt``: never through a planted link, never over an existing file."""
    fd = os.open(f"{dest}.reason.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{reason}\nentry: {original}\nset aside: {now_iso()}\n")


def _scan_folder(folder: Path, domain: str | None) -> list[_Entry]:
    """Every non-pending entry under ``folder``, recursing into real directories only."""
    found: list[_Entry] = []
    with os.scandir(folder) as it:
        children = sorted(it, key=lambda e: e.name)
    for child in children:
        if _is_pending(child.name):
            continue
        path = Path(child.path)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode) and _entry_problem(path, st) is None:
            found.extend(_scan_folder(path, domain))
        else:
            found.append(_Entry(path, domain, st))
    return found


def _scan_inbox(inbox: Path) -> tuple[list[_Entry], list[tuple[Path, str]]]:
    """Entries under the domain folders, and top-level entries that are not domain folders (with why)."""
    entries: list[_Entry] = []
    strays: list[tuple[Path, str]] = []
    with os.scandir(inbox) as it:
        top = sorted(it, key=lambda e: e.name)
    for child in top:
        if _is_pending(child.name) or child.name in (QUARANTINE, UNRECOGNIZED):
            continue
        path = Path(child.path)
        st = os.lstat(path)
        if child.name in DOMAINS and stat.S_ISDIR(st.st_mode):
            entries.extend(_scan_folder(path, child.name))
        else:
            strays.append((path, _entry_problem(path, st) or ""))
    return entries, strays


def _set_aside(inbox: Path, root: Path, entry: Path, domain: str | None, folder: str, reason: str,
               original: str | None = None) -> SetAside:
    """Move ``entry`` itself (a link stays a link, never its target) to ``inbox/folder/domain/``."""
    dest_dir = _safe_dir(inbox / folder / (domain or NO_DOMAIN), root)
    original = original or repr(str(entry.relative_to(inbox)))
    dest = _free_name(dest_dir, _printable(entry.name))
    os.rename(entry, dest)
    _write_reason(dest, reason, original)
    return SetAside(original, dest, reason)


def _land_file(entry: _Entry, dest: Path) -> bool:
    """Rename a plain file into landing; False if it was swapped for something else since it was listed."""
    if os.path.lexists(dest):
        raise InboxError(f"{dest} already exists; a fresh batch key never collides")
    os.rename(entry.path, dest)
    after = os.lstat(dest)
    return stat.S_ISREG(after.st_mode) and (after.st_dev, after.st_ino) == (entry.stat.st_dev, entry.stat.st_ino)


def check_batch_key(batch: str) -> str:
    """A batch key names folders and files under the data root: letters, digits, '.', '_', '-' only."""
    if not BATCH_KEY.fullmatch(batch) or ".." in batch:
        raise ValueError(f"invalid batch key {batch!r}: use letters, digits, '.', '_' and '-' (no '..')")
    return batch


def land_inbox(root: Path, inbox: Path, batch: str) -> InboxLanding:
    """Move new inbox files into ``{root}/landing/{batch}/`` and write the batch manifest.

    Unsafe entries (symlinks, hardlinks, special files, names with control characters, backslashes or
    drive letters, anything not in a domain folder) go to ``inbox/_quarantine/`` and files whose format
    cannot be told from the name to ``inbox/_unrecognized/``, each with a reason file: nothing is
    silently skipped, and nothing outside the data root is read, moved or written.
    """
    root, inbox = Path(root), Path(inbox)
    check_batch_key(batch)
    if not os.path.lexists(inbox):
        return InboxLanding(None)
    if not _inside(inbox, root) or inbox.is_symlink():
        raise InboxError(f"the inbox {inbox} resolves to {os.path.realpath(inbox)}, outside the data root {root}"
                         " or through a link; the inbox must be a real folder inside the data root")
    entries, strays = _scan_inbox(inbox)
    set_aside = [_set_aside(inbox, root, path, None, QUARANTINE if problem else UNRECOGNIZED,
                            problem or f"not in a domain folder (known domains: {', '.join(DOMAINS)})")
                 for path, problem in strays]
    landed: list[SourceEntry] = []
    for entry in entries:
        problem = _entry_problem(entry.path, entry.stat)
        fmt = None if problem else infer_format(entry.path)
        if problem or fmt is None:
            set_aside.append(_set_aside(inbox, root, entry.path, entry.domain, QUARANTINE if problem else UNRECOGNIZED,
                                        problem or "unknown format: cannot tell it from the file name"))
            continue
        rel = entry.path.relative_to(inbox / entry.domain)
        dest = _safe_dir(root / "landing" / batch / entry.domain / rel.parent, root) / rel.name
        if not _land_file(entry, dest):
            set_aside.append(_set_aside(inbox, root, dest, entry.domain, QUARANTINE,
                                        "replaced by another file or a link while it was being landed",
                                        repr(str(entry.path.relative_to(inbox)))))
            continue
        landed.append(SourceEntry("inbox", entry.domain, fmt, str(dest), (), f"inbox/{entry.domain}/{rel}"))
    if not landed:
        return InboxLanding(None, set_aside)
    manifest = BatchManifest(batch, now_iso(), landed)
    write_manifest(root, manifest)
    return InboxLanding(manifest, set_aside)
