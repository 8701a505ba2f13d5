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
import shutil
import sysconfig
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

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
    matches = sorted(globlib.glob(spec.path)) if globlib.has_magic(spec.path) else [spec.path]
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
    """Write a batch manifest atomically; a batch's manifest never changes once written."""
    path = manifest_path(root, manifest.batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"batch": manifest.batch, "created": manifest.created,
            "entries": [{**asdict(e), "include": list(e.include)} for e in manifest.entries]}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False))
    os.replace(tmp, path)
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


def batch_from_registry(root: Path, batch: str, specs: list[SourceSpec]) -> BatchManifest:
    """Register a batch made of every registry source (used by the demo and `tier-assets add-batch`)."""
    entries = [e for spec in specs for e in expand(spec)]
    manifest = BatchManifest(batch, now_iso(), entries)
    write_manifest(root, manifest)
    return manifest


def inbox_files(inbox: Path) -> dict[str, list[Path]]:
    """New files waiting in ``inbox/<domain>/`` (hidden and partial files are left alone)."""
    found: dict[str, list[Path]] = {}
    for domain in DOMAINS:
        folder = inbox / domain
        if not folder.is_dir():
            continue
        files = [
            p for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".tmp", ".part"))
        ]
        if files:
            found[domain] = files
    return found


def land_inbox(root: Path, inbox: Path, batch: str) -> BatchManifest | None:
    """Move new inbox files into ``{root}/landing/{batch}/`` and write the batch manifest.

    Files whose format cannot be told from the name stay in the inbox under
    ``_unrecognized/`` with a note, instead of being silently skipped.
    """
    found = inbox_files(inbox)
    if not found:
        return None
    entries: list[SourceEntry] = []
    for domain, files in found.items():
        for f in files:
            fmt = infer_format(f)
            if fmt is None:
                bad = inbox / "_unrecognized" / domain
                bad.mkdir(parents=True, exist_ok=True)
                shutil.move(str(f), bad / f.name)
                (bad / f"{f.name}.reason.txt").write_text("unknown format: cannot tell it from the file name\n")
                continue
            rel = f.relative_to(inbox / domain)
            dest = Path(root) / "landing" / batch / domain / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), dest)
            entries.append(SourceEntry("inbox", domain, fmt, str(dest), (), f"inbox/{domain}/{rel}"))
    if not entries:
        return None
    manifest = BatchManifest(batch, now_iso(), entries)
    write_manifest(root, manifest)
    return manifest
