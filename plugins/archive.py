"""Customization packages as archives: the canonical tree, its hash, the zip, the cache.

A consultant publishes a customization by uploading its package folder as a zip. The
server never trusts the zip: :func:`read_zip` validates it (size, every path, the kind
of every entry, what a package may hold) and names *every* problem at once in one
:class:`ArchiveError`, each saying how to fix it. What survives is a
:class:`PackageTree`: the package's files as ``(POSIX relative path, bytes)`` pairs in
sorted order, nothing else (no timestamps, permissions, zip metadata or folder name).
Its :attr:`PackageTree.sha256` identifies a published version: the same package gives
the same hash on any machine, whether it arrived as a folder (:func:`tree_from_directory`)
or as any zip of that folder.

Servers run only what is in the database: :func:`materialize` writes a tree into a
local content-addressed cache (``<cache root>/<sha256>/``, read-only, written atomically
and safe against concurrent servers) and :func:`verify` recomputes a cached directory's
hash, so a partial or tampered copy is detected and replaced.

Standard library only, plus the domain's error types (``core.model.errors``, itself
standard library only): a worker process may use it without loading anything else.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from core.model.errors import ArchiveError, ArchiveProblem, InvalidInputError

#: the manifest every package holds at its root (``plugins.manifest.MANIFEST_FILE``,
#: repeated so that this module does not load ``packaging`` through that one)
MANIFEST_FILE = "customization.toml"

MAX_UPLOAD_BYTES_ENV = "TAILOR_MAX_UPLOAD_BYTES"
#: the largest zip accepted, unless ``TAILOR_MAX_UPLOAD_BYTES`` says otherwise (the
#: GraphQL body limit is separate: a multipart upload must pass both)
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: files in one package
MAX_FILES = 1_000
#: all files of a package together, unpacked
MAX_UNPACKED_BYTES = 20 * 1024 * 1024
#: one file, unpacked
MAX_FILE_BYTES = 5 * 1024 * 1024
#: a relative path, in UTF-8 bytes (a file system's usual name limit)
MAX_PATH_LENGTH = 255
#: components of a relative path (``a/b/c.py`` has 3)
MAX_PATH_DEPTH = 16

CACHE_DIR_ENV = "TAILOR_CACHE_DIR"
#: where a server keeps its caches when ``TAILOR_CACHE_DIR`` is unset (under the
#: working directory: a server started elsewhere has its own cache, by design)
DEFAULT_CACHE_DIR = ".tailor-cache"

#: never part of a package: byte-compiled caches, version control, virtual
#: environments, tool caches, packaging leftovers, macOS metadata. Each pattern is
#: matched (``fnmatch``, case-sensitive) against every component of a path.
#: :func:`tree_from_directory` skips them (a folder on a consultant's machine has
#: them); :func:`read_zip` refuses them (an upload is meant to be the package).
IGNORED: tuple[str, ...] = (
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".git",
    ".venv",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    ".DS_Store",
    "__MACOSX",
)
#: the byte-compiled subset of :data:`IGNORED` (Tailor runs sources only)
BYTE_COMPILED: tuple[str, ...] = ("__pycache__", "*.pyc", "*.pyo")
#: native code: refused from folders and zips alike (a package is Python and data)
NATIVE_SUFFIXES: tuple[str, ...] = (".so", ".pyd", ".dll", ".dylib")

#: prefix of the canonical serialization; bumping it changes every hash
_TREE_FORMAT = b"tailor-package-tree-v1\x00"
#: fixed zip metadata, so a tree always gives the same zip bytes
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_FILE_MODE = stat.S_IFREG | 0o644
_CACHED_FILE_MODE = 0o444
_CACHED_DIR_MODE = 0o555
#: staging (``.tmp-*``) and discarded (``.bad-*``) folders older than this were left by
#: a process that died; a live one finishes in well under a second
STALE_SECONDS = 3600
_DRIVE = re.compile(r"^[A-Za-z]:")


def _patterns(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex matching a path component against any of ``patterns`` (fnmatch
    syntax, case-sensitive): one match per component instead of one per pattern."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


_IGNORED_RE = _patterns(IGNORED)
_BYTE_COMPILED_RE = _patterns(BYTE_COMPILED)
_HOW_TO_ZIP = "`tailor customization publish PATH` builds a correct archive from the folder"


def max_upload_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The upload limit: ``TAILOR_MAX_UPLOAD_BYTES`` (a positive integer of bytes),
    else :data:`DEFAULT_MAX_UPLOAD_BYTES`. A bad value is a typed error naming the
    variable, not a silent default: a server should not start with a limit it was
    not given."""
    environ = os.environ if environ is None else environ
    raw = environ.get(MAX_UPLOAD_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_UPLOAD_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError(
            MAX_UPLOAD_BYTES_ENV, f"{raw!r} is not an integer; give a size in bytes"
        ) from None
    if value <= 0:
        raise InvalidInputError(
            MAX_UPLOAD_BYTES_ENV, f"must be a positive number of bytes; got {value}"
        )
    return value


def cache_root_default(environ: Mapping[str, str] | None = None) -> Path:
    """Where this server materializes customization versions:
    ``$TAILOR_CACHE_DIR/customizations``, else ``./.tailor-cache/customizations``
    under the working directory, made absolute now (a later ``chdir`` does not move
    it). Servers share nothing but the database: each fills its own cache."""
    environ = os.environ if environ is None else environ
    base = environ.get(CACHE_DIR_ENV, "").strip() or DEFAULT_CACHE_DIR
    return (Path.cwd() / base / "customizations").absolute()


@dataclass(frozen=True, repr=False)
class PackageTree:
    """A package as published: its files, ``(path, content)`` sorted by path.

    Paths are relative, POSIX (``/``), NFC-normalized, with no empty, ``.`` or ``..``
    component. A tree is always valid: construction checks every rule
    :func:`read_zip` applies to the files themselves (paths, collisions, limits,
    nothing byte-compiled or native, ``customization.toml`` at the root) and raises
    :class:`ArchiveError` otherwise. Files given in any order are sorted.
    """

    files: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        files = tuple(sorted(self.files))
        object.__setattr__(self, "files", files)
        problems: list[ArchiveProblem] = []
        for path, _ in files:
            norm, reasons = _normalize(path)
            problems += [(_printable(path), reason) for reason in reasons]
            if norm is not None and norm != path:
                problems.append((path, f"not a canonical path (expected {norm!r})"))
        problems += _tree_problems([(path, len(data)) for path, data in files])
        if problems:
            raise ArchiveError(problems)

    def __repr__(self) -> str:
        return f"PackageTree({len(self.files)} files, {self.size} bytes, sha256={self.sha256})"

    @cached_property
    def sha256(self) -> str:
        """Hex sha256 of the canonical serialization, which is, in bytes::

            b"tailor-package-tree-v1\\0"
            then for each file, sorted by path (code point order, = UTF-8 byte order):
                path as UTF-8, b"\\0", len(content) as ASCII decimal, b"\\0", content

        A path never holds NUL, and the length frames the content, so two different
        trees never serialize alike. Nothing else enters: not the folder's name,
        timestamps, permissions or anything of a zip."""
        digest = hashlib.sha256(_TREE_FORMAT)
        for path, data in self.files:
            digest.update(path.encode("utf-8"))
            digest.update(b"\x00%d\x00" % len(data))
            digest.update(data)
        return digest.hexdigest()

    @property
    def size(self) -> int:
        """Bytes of all files together, unpacked."""
        return sum(len(data) for _, data in self.files)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(path for path, _ in self.files)

    def get(self, path: str) -> bytes | None:
        """The content of one file, or None when the tree has no such file."""
        for name, data in self.files:
            if name == path:
                return data
        return None


# -- paths ---------------------------------------------------------------------------


def _printable(name: str) -> str:
    """A name safe to show in a message: control characters escaped."""
    if name.isprintable():
        return name
    return "".join(
        c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
        for c in name
    )


def _normalize(name: str) -> tuple[str | None, list[str]]:
    """A raw name as its canonical relative path, or the reasons it has none.

    Harmless spellings are normalized (a leading ``./``, ``a//b``, a ``.`` component,
    NFC for decomposed accents) and then collide with the plain spelling, as they would
    on disk. Anything that could escape the package or mean different files on
    different systems is refused."""
    problems: list[str] = []
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return None, ["the name is not valid UTF-8; rename the file"]
    if not (name.isascii() and name.isprintable()) and any(
        unicodedata.category(c).startswith("C") for c in name
    ):
        problems.append(
            "the name holds a NUL, control or invisible formatting character; rename the file"
        )
    if name.startswith("/"):
        problems.append("an absolute path; the archive must hold paths relative to the package")
    if "\\" in name:
        problems.append("a backslash in the name; use '/' between folders (" + _HOW_TO_ZIP + ")")
    if _DRIVE.match(name):
        problems.append("a drive letter; the archive must hold paths relative to the package")
    elif ":" in name:
        problems.append("a ':' in the name (not portable); rename the file")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        problems.append("a '..' component would write outside the package; remove it")
    if not parts:
        problems.append("an empty name")
    if problems:
        return None, problems
    return unicodedata.normalize("NFC", "/".join(parts)), []


def _path_problems(path: str) -> list[ArchiveProblem]:
    """Rules on a canonical path: length and depth."""
    problems: list[ArchiveProblem] = []
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_LENGTH:
        problems.append((path, f"the path is longer than {MAX_PATH_LENGTH} bytes; shorten it"))
    if path.count("/") + 1 > MAX_PATH_DEPTH:
        problems.append(
            (path, f"the path is deeper than {MAX_PATH_DEPTH} folders; flatten the package")
        )
    return problems


def _ignored_prefix(path: str, patterns: re.Pattern[str] = _IGNORED_RE) -> str | None:
    """The path up to its first component matching one of ``patterns`` (``a/.git/``,
    ``x.pyc``), or None: a whole ignored folder is reported once, not per file."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if patterns.match(part):
            prefix = "/".join(parts[: i + 1])
            return prefix + "/" if i + 1 < len(parts) else prefix
    return None


def _content_problems(paths: Iterable[str]) -> list[ArchiveProblem]:
    """What a package may not hold: byte-compiled files, native code, and the rest of
    :data:`IGNORED` (in an archive; a folder skips those before this)."""
    problems: dict[str, str] = {}
    for path in paths:
        compiled = _ignored_prefix(path, _BYTE_COMPILED_RE)
        ignored = _ignored_prefix(path)
        if compiled is not None:
            problems[compiled] = (
                "byte-compiled files are refused: Tailor runs sources only; delete "
                f"__pycache__ folders and .pyc files from the archive ({_HOW_TO_ZIP})"
            )
        elif ignored is not None:
            problems[ignored] = (
                "not part of a package (version control, a virtual environment, a tool "
                f"cache or system metadata); leave it out of the archive ({_HOW_TO_ZIP})"
            )
        elif path.lower().endswith(NATIVE_SUFFIXES):
            problems[path] = (
                "native code is refused: a package holds Python sources and data files; remove it"
            )
    return list(problems.items())


def _tree_problems(sizes: list[tuple[str, int]]) -> list[ArchiveProblem]:
    """Rules on the set of canonical paths and their sizes: nothing refused, no two
    files that would be one on a case-insensitive disk, no file where another needs a
    folder, the limits, and the manifest at the root."""
    problems = _content_problems(path for path, _ in sizes)
    exact: set[str] = set()
    seen: dict[str, str] = {}
    for path, _ in sorted(sizes):
        key = path.casefold()
        if path in exact:
            problems.append((path, "the name appears twice; keep one"))
        elif key in seen:
            problems.append(
                (
                    path,
                    f"collides with {seen[key]!r} (names differing only in case or Unicode "
                    "form are one file on many systems); rename one",
                )
            )
        else:
            seen[key] = path
        exact.add(path)
    folders = {
        "/".join(parts[:i]).casefold()
        for path, _ in sizes
        for parts in [path.split("/")]
        for i in range(1, len(parts))
    }
    for path, _ in sizes:
        if path.casefold() in folders:
            problems.append((path, "a file with the name of a folder; rename one"))
    if len(sizes) > MAX_FILES:
        problems.append(("", f"{len(sizes)} files, more than the {MAX_FILES} a package may hold"))
    total = 0
    for path, size in sizes:
        total += size
        if size > MAX_FILE_BYTES:
            problems.append((path, f"{size} bytes, more than the {MAX_FILE_BYTES} a file may hold"))
    if total > MAX_UNPACKED_BYTES:
        problems.append(
            ("", f"{total} bytes unpacked, more than the {MAX_UNPACKED_BYTES} a package may hold")
        )
    if MANIFEST_FILE not in {path for path, _ in sizes}:
        problems.append(
            (
                MANIFEST_FILE,
                "missing at the root of the package; a package is a folder holding "
                f"customization.toml and its Python modules ({_HOW_TO_ZIP})",
            )
        )
    for path, _ in sizes:
        problems += _path_problems(path)
    return problems


# -- folders -------------------------------------------------------------------------


def _is_ignored(name: str) -> bool:
    return _IGNORED_RE.match(name) is not None


def tree_from_directory(path: Path) -> PackageTree:
    """Read a package folder as a tree, skipping what :data:`IGNORED` lists.

    A link inside the folder (a consultant's machine is not the server's), anything
    not a file or folder, native code, names that would collide, the limits and a
    missing ``customization.toml`` are errors, all reported together. The folder's own
    name, timestamps and permissions are not part of the tree."""
    root = Path(path)
    if not root.is_dir():
        raise ArchiveError([(str(path), "not a folder; give the package's folder")])
    problems: list[ArchiveProblem] = []
    files: list[tuple[str, bytes]] = []
    sizes: list[tuple[str, int]] = []
    budget = MAX_UNPACKED_BYTES

    for rel, entry in _walk(root, ""):
        label = _printable(rel)
        if len(sizes) == MAX_FILES:
            problems.append(
                (
                    "",
                    f"more than {MAX_FILES} files (reading stopped there), more than a "
                    "package may hold; is this the package's folder?",
                )
            )
            break
        norm, reasons = _normalize(rel)
        problems += [(label, reason) for reason in reasons]
        if entry.is_dir(follow_symlinks=False):
            problems.append(
                (label + "/", f"deeper than {MAX_PATH_DEPTH} folders; flatten the package")
            )
            continue
        if entry.is_symlink():
            problems.append(
                (
                    label,
                    "a symbolic link; replace it with the file it points to "
                    "(a package is published as regular files)",
                )
            )
            continue
        if not entry.is_file(follow_symlinks=False):
            problems.append((label, "not a regular file (a device, pipe or socket); remove it"))
            continue
        if norm is None:
            continue
        size = entry.stat(follow_symlinks=False).st_size
        sizes.append((norm, size))
        if size > MAX_FILE_BYTES or size > budget:
            continue  # reported by _tree_problems; not worth reading
        try:
            with open(entry.path, "rb") as handle:
                data = handle.read(min(MAX_FILE_BYTES, budget) + 1)
        except OSError as exc:
            problems.append((label, f"cannot be read: {exc.strerror or exc}"))
            continue
        if len(data) != size:
            problems.append((label, "changed while it was read; try again"))
            continue
        budget -= len(data)
        files.append((norm, data))
    problems += _tree_problems(sizes)
    if problems:
        raise ArchiveError(problems)
    return PackageTree(tuple(files))


def _walk(folder: Path, prefix: str, depth: int = 1) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every non-folder entry under ``folder`` (links not followed) with its relative
    POSIX path, in sorted order, skipping :data:`IGNORED` names without descending
    into them. A folder at :data:`MAX_PATH_DEPTH` is yielded, not entered."""
    with os.scandir(folder) as entries:
        ordered = sorted(entries, key=lambda e: e.name)
    for entry in ordered:
        if _is_ignored(entry.name):
            continue
        rel = prefix + entry.name
        if entry.is_dir(follow_symlinks=False) and depth < MAX_PATH_DEPTH:
            yield from _walk(Path(entry.path), rel + "/", depth + 1)
        else:
            yield rel, entry


# -- zips ----------------------------------------------------------------------------


def build_zip(tree: PackageTree) -> bytes:
    """The tree as a deterministic zip: entries sorted, timestamps 1980-01-01, mode
    0644, no folder entries, deflated at level 6. The same tree gives byte-identical
    zips on any machine with the same zlib (the hash never depends on them: it is
    the tree's)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in tree.files:
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = _ZIP_FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()


def read_zip(data: bytes, limit: int | None = None) -> PackageTree:
    """Validate an uploaded zip and return its tree (``tree.sha256`` names the version).

    Refuses, all problems at once: an upload over ``limit`` (default
    :func:`max_upload_bytes`; checked before the zip is opened), what is not a zip,
    unsafe or unportable names (absolute, ``..``, backslash, drive letter, control
    characters), links and other non-regular entries, encrypted entries and unknown
    compression, byte-compiled files, native code and the rest of :data:`IGNORED`,
    duplicate or colliding names, too many files, too many bytes unpacked (each member
    is read with a bounded read and its CRC checked: a lying declared size is caught,
    never trusted) and a missing ``customization.toml``. When every file sits under one
    top folder (``zip -r mypkg.zip mypkg``), that folder is stripped. Folder entries
    are ignored."""
    limit = max_upload_bytes() if limit is None else limit
    if len(data) > limit:
        raise ArchiveError(
            [
                (
                    "",
                    f"the archive is {len(data)} bytes, over the {limit}-byte upload limit "
                    f"({MAX_UPLOAD_BYTES_ENV}); leave out large data files, or ask the "
                    "operator to raise the limit",
                )
            ]
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # hostile bytes: any failure of the parser means "not a zip"
        raise ArchiveError(
            [("", f"not a zip archive ({exc}); upload the package folder zipped")]
        ) from None
    with archive:
        return _read_archive(archive)


def _read_archive(archive: zipfile.ZipFile) -> PackageTree:
    infos = archive.infolist()
    if len(infos) > 2 * MAX_FILES:  # not even worth checking the names
        raise ArchiveError(
            [("", f"{len(infos)} entries, more than the {MAX_FILES} files a package may hold")]
        )
    problems: list[ArchiveProblem] = []
    members: list[tuple[str, zipfile.ZipInfo]] = []
    for info in infos:
        raw = info.orig_filename
        label = _printable(raw)
        mode = info.external_attr >> 16
        folder = raw.endswith("/") or stat.S_ISDIR(mode)
        norm, reasons = _normalize(raw)
        problems += [(label, reason) for reason in reasons]
        if not info.flag_bits & 0x800 and not raw.isascii():
            problems.append(
                (label, "a non-ASCII name not marked UTF-8; zip it with a tool that writes UTF-8")
            )
        if folder:
            continue
        if stat.S_ISLNK(mode):
            problems.append(
                (
                    label,
                    "a symbolic link; replace it with the file it points to "
                    "(a package is published as regular files)",
                )
            )
            continue
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            problems.append((label, "not a regular file (a device, pipe or socket); remove it"))
            continue
        if info.flag_bits & 0x1:
            problems.append((label, "encrypted; upload the archive without a password"))
            continue
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.append(
                (
                    label,
                    f"compressed with method {info.compress_type}; use deflate (zip's "
                    "default) or no compression",
                )
            )
            continue
        if norm is not None:
            members.append((norm, info))

    members = _strip_top_folder(members)
    sizes = [(path, info.file_size) for path, info in members]
    problems += _tree_problems(sizes)
    if (
        len(sizes) > MAX_FILES
        or sum(size for _, size in sizes) > MAX_UNPACKED_BYTES
        or any(size > MAX_FILE_BYTES for _, size in sizes)
    ):
        # over a limit by the sizes the zip declares (reported): reading would only
        # confirm it
        raise ArchiveError(problems)

    files: list[tuple[str, bytes]] = []
    budget = MAX_UNPACKED_BYTES
    for path, info in members:
        cap = min(MAX_FILE_BYTES, budget)
        try:
            with archive.open(info) as member:
                content = member.read(cap + 1)
        except Exception as exc:  # hostile bytes: any failure to inflate is a corrupt entry
            problems.append((path, f"cannot be unpacked ({exc}); re-create the archive"))
            continue
        if len(content) > cap:
            problems.append(
                (
                    path,
                    f"unpacks to more than {cap} bytes although it declares "
                    f"{info.file_size} (a zip bomb?); re-create the archive",
                )
            )
            break  # the budget is spent: nothing more is read
        if len(content) != info.file_size or zlib.crc32(content) != info.CRC:
            problems.append(
                (
                    path,
                    "its content does not match the size or checksum the archive declares "
                    "(corrupt or forged); re-create the archive",
                )
            )
            continue
        budget -= len(content)
        files.append((path, content))
    if problems:
        raise ArchiveError(problems)
    return PackageTree(tuple(files))


def _strip_top_folder(
    members: list[tuple[str, zipfile.ZipInfo]],
) -> list[tuple[str, zipfile.ZipInfo]]:
    """Drop the one folder every file sits under (what ``zip -r mypkg.zip mypkg``
    makes). Entries refused anyway (``__MACOSX/``, ...) do not count, so a zip made by
    macOS Finder is reported for its metadata, not for a missing manifest."""
    kept = [path for path, _ in members if _ignored_prefix(path) is None]
    tops = {path.split("/", 1)[0] for path in kept}
    if len(tops) != 1 or any("/" not in path for path in kept):
        return members
    top = tops.pop() + "/"
    return [(path.removeprefix(top), info) for path, info in members]


# -- the cache -----------------------------------------------------------------------


def verify(path: Path, sha256: str) -> bool:
    """Whether the directory holds exactly the tree of hash ``sha256``: the files are
    read again and hashed (a partial, edited or extended copy fails). What
    :data:`IGNORED` lists is skipped, as for any folder: a worker importing from the
    cache as root may leave ``__pycache__`` behind (run workers with
    ``sys.dont_write_bytecode``)."""
    try:
        return tree_from_directory(path).sha256 == sha256
    except (ArchiveError, OSError):
        return False


def materialize(tree: PackageTree, cache_root: Path) -> Path:
    """Write ``tree`` to ``cache_root/<sha256>/`` and return that path.

    The files are written to a temporary folder inside ``cache_root`` and renamed into
    place in one step, so no one ever sees a partial version. An existing directory is
    reused when :func:`verify` accepts it and replaced otherwise. Several processes may
    materialize the same version at once: whoever loses the rename checks the winner's
    copy and uses it. Files end read-only (0444, folders 0555)."""
    cache_root = Path(cache_root)
    cache_root.mkdir(parents=True, exist_ok=True)
    digest = tree.sha256
    target = cache_root / digest
    for _attempt in range(5):
        if target.exists() or target.is_symlink():
            if not target.is_symlink() and verify(target, digest):
                return target
            _discard(target, cache_root, digest)
            continue
        _sweep(cache_root)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{digest[:16]}-", dir=cache_root))
        lost = False
        try:
            _write(tree, staging)
            try:
                os.rename(staging, target)
            except OSError:
                if not (target.exists() or target.is_symlink()):
                    raise
                lost = True  # another process renamed first: check its copy next round
        except BaseException:
            _remove(staging)
            raise
        if lost:
            _remove(staging)
            continue
        with contextlib.suppress(OSError):
            os.chmod(target, _CACHED_DIR_MODE)
        return target
    raise OSError(f"could not materialize customization version {digest} in {cache_root}")


def _write(tree: PackageTree, folder: Path) -> None:
    """The tree's files under ``folder``, read-only; ``folder`` itself stays writable
    until it is in place (renaming it needs no write permission on it, chmod after)."""
    for path, data in tree.files:
        dest = folder.joinpath(*path.split("/"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "xb") as out:
            out.write(data)
        os.chmod(dest, _CACHED_FILE_MODE)
    for current, _dirs, _files in os.walk(folder, topdown=False):
        if Path(current) != folder:
            os.chmod(current, _CACHED_DIR_MODE)


def _discard(target: Path, cache_root: Path, digest: str) -> None:
    """Move a bad cached copy aside in one step (so nobody picks it up again), then
    delete it. Another process may have moved it first, or already replaced it with a
    good copy (then that copy is put back, unless a third one took its place)."""
    aside = Path(tempfile.mkdtemp(prefix=".bad-", dir=cache_root)) / "copy"
    try:
        os.rename(target, aside)
    except FileNotFoundError:
        pass
    else:
        if not aside.is_symlink() and verify(aside, digest):
            with contextlib.suppress(OSError):
                os.rename(aside, target)
    _remove(aside.parent)


def _sweep(cache_root: Path) -> None:
    """Delete what crashed processes left: staging and discarded folders older than
    :data:`STALE_SECONDS` (only when writing: a warm cache is never listed). Another
    process may be finishing or removing its own meanwhile: gone is fine."""
    limit = time.time() - STALE_SECONDS
    with os.scandir(cache_root) as entries:
        leftovers = [e for e in entries if e.name.startswith((".tmp-", ".bad-"))]
    for entry in leftovers:
        try:
            stale = entry.stat(follow_symlinks=False).st_mtime < limit
        except FileNotFoundError:
            continue
        if stale:
            _remove(Path(entry.path))


def _remove(folder: Path) -> None:
    """Delete a folder this module wrote, read-only parts included (links are removed,
    never followed)."""
    for current, _dirs, _files in os.walk(folder):
        with contextlib.suppress(OSError):
            os.chmod(current, 0o700)
    shutil.rmtree(folder, ignore_errors=True)
