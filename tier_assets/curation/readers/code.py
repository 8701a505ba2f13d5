"""Source-code files: one document per file, the language known from the extension.

``iter_code_tree`` lists the files of a source tree in a fixed order (so re-runs give the
same record order and ids), skipping VCS, cache and dependency folders and files in no
known language.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

from tier_assets.curation.readers.base import (
    Extracted,
    Quarantined,
    ReaderConfig,
    ReadItem,
    SourceFileError,
    preview,
)

_LANGUAGES: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp",
    ".cs": "csharp",
    ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript",
    ".go": "go", ".rs": "rust", ".rb": "ruby", ".php": "php", ".swift": "swift", ".dart": "dart",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".ps1": "powershell",
    ".sql": "sql",
    ".lua": "lua", ".pl": "perl", ".pm": "perl", ".r": "r", ".jl": "julia",
    ".hs": "haskell", ".ml": "ocaml", ".mli": "ocaml", ".ex": "elixir", ".exs": "elixir", ".erl": "erlang",
    ".clj": "clojure", ".f90": "fortran", ".f95": "fortran",
}
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})  # plus any dot-folder


def language_of(path: Path) -> str | None:
    """The programming language of a file from its extension, or None (not code)."""
    return _LANGUAGES.get(path.suffix.lower())


def _included(relative: str, include: list[str] | None) -> bool:
    """Glob match on the path relative to the tree root; a leading ``**/`` also matches at the root."""
    if not include:
        return True
    return any(fnmatch(relative, p) or (p.startswith("**/") and fnmatch(relative, p[3:])) for p in include)


def _walk(folder: Path) -> Iterator[Path]:
    """Files under ``folder`` in path order (entries sorted by name, folders expanded in place)."""
    with os.scandir(folder) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if not entry.name.startswith(".") and entry.name not in _SKIPPED_DIRS:
                yield from _walk(Path(entry.path))
        elif entry.is_file():
            yield Path(entry.path)


def iter_code_tree(root: Path, include: list[str] | None = None) -> Iterator[Path]:
    """Code files under ``root`` matching ``include`` (all when None or empty), sorted by path.

    Symlinks are skipped, so a tree cannot yield a file twice or leave its root.
    """
    for path in _walk(root):
        if language_of(path) is not None and _included(path.relative_to(root).as_posix(), include):
            yield path


def read_code_file(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield the one document of a source file (``lang`` stays None: it is for natural language)."""
    language = language_of(path)
    try:
        size = path.stat().st_size
        if size > config.max_code_file_bytes:
            yield Quarantined(0, "over_size_cap", f"{size} bytes is over {config.max_code_file_bytes}", "", 0)
            return
        data = path.read_bytes()
    except OSError as exc:
        raise SourceFileError(path, exc.strerror or str(exc)) from exc
    if language is None:
        yield Quarantined(0, "unknown_language", f"no language for extension {path.suffix!r}", preview(data), 0)
    elif b"\x00" in data:
        yield Quarantined(0, "binary_content", "file contains NUL bytes", preview(data), 0)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            yield Quarantined(0, "invalid_utf8", str(exc), preview(data), 0)
            return
        yield Extracted(text=text, record_index=0, byte_offset=0, meta={"language": language})
