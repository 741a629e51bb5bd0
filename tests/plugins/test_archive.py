"""Customization packages as archives (plugins/archive.py), through real folders and
real zips: the sample packages of customizations/, zips built with zipfile and with
the zip tool, hostile zips (zip slip, absolute paths, links, bombs, forged headers),
determinism of the hash and of the zip bytes, and the read-only cache under races."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import pickle
import py_compile
import shutil
import stat
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import unicodedata
import warnings
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.model.errors import ArchiveError, InvalidInputError
from plugins.archive import (
    CACHE_DIR_ENV,
    DEFAULT_MAX_UPLOAD_BYTES,
    IGNORED,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_PATH_DEPTH,
    MAX_PATH_LENGTH,
    MAX_UPLOAD_BYTES_ENV,
    STALE_SECONDS,
    PackageTree,
    build_zip,
    cache_root_default,
    materialize,
    max_upload_bytes,
    read_zip,
    tree_from_directory,
    verify,
)
from plugins.archive import (
    MANIFEST_FILE as MANIFEST_NAME,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "customizations" / "globex_eur_rounding"
MANIFEST = b'name = "pkg"\nversion = "1.0.0"\ntenants = ["acme"]\nrequires = ">=1.0"\n'
HOOKS = b"def f():\n    return 1\n"


# -- helpers -------------------------------------------------------------------------


def make_zip(*entries: tuple[str | zipfile.ZipInfo, bytes], method: int = zipfile.ZIP_DEFLATED):
    """A zip of exactly these entries (duplicates allowed: zipfile only warns)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": that is the point
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


def package_zip(*extra: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    return make_zip(("customization.toml", MANIFEST), ("hooks.py", HOOKS), *extra)


def entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def patch_headers(data: bytes, name: bytes, offsets: tuple[int, int], fmt: str, value: int):
    """Overwrite one field of ``name``'s local header (offset ``offsets[0]``) and
    central directory header (``offsets[1]``): forging what zipfile would not write."""
    out = bytearray(data)
    # (signature, the field's offset, where the name length is, where the name starts)
    headers = ((b"PK\x03\x04", offsets[0], 26, 30), (b"PK\x01\x02", offsets[1], 28, 46))
    patched = 0
    for signature, offset, length_at, name_at in headers:
        start = 0
        while (start := out.find(signature, start)) >= 0:
            (length,) = struct.unpack_from("<H", out, start + length_at)
            if bytes(out[start + name_at : start + name_at + length]) == name:
                struct.pack_into(fmt, out, start + offset, value)
                patched += 1
            start += 4
    assert patched == 2, "the entry's two headers were not found"
    return bytes(out)


def problems(exc_info: pytest.ExceptionInfo[ArchiveError]) -> dict[str, str]:
    return dict(exc_info.value.problems)


def copy_package(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def write_package(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


# -- configuration -------------------------------------------------------------------


def test_upload_limit_from_the_environment():
    assert max_upload_bytes({}) == DEFAULT_MAX_UPLOAD_BYTES
    assert max_upload_bytes({MAX_UPLOAD_BYTES_ENV: " 1234 "}) == 1234
    for bad in ("5MB", "-1", "0"):
        with pytest.raises(InvalidInputError) as caught:
            max_upload_bytes({MAX_UPLOAD_BYTES_ENV: bad})
        assert caught.value.field == MAX_UPLOAD_BYTES_ENV
        assert "bytes" in caught.value.message


def test_read_zip_takes_its_default_limit_from_the_environment(monkeypatch):
    data = package_zip()
    monkeypatch.setenv(MAX_UPLOAD_BYTES_ENV, str(len(data) - 1))
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    assert MAX_UPLOAD_BYTES_ENV in caught.value.message
    monkeypatch.setenv(MAX_UPLOAD_BYTES_ENV, str(len(data)))
    assert read_zip(data).get("hooks.py") == HOOKS


def test_cache_root_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cache_root_default({}) == tmp_path / ".tailor-cache" / "customizations"
    assert cache_root_default({CACHE_DIR_ENV: "/srv/tailor"}) == Path("/srv/tailor/customizations")
    assert cache_root_default({CACHE_DIR_ENV: "rel"}) == tmp_path / "rel" / "customizations"


def test_archive_error_is_typed_invalid_input_listing_every_problem():
    error = ArchiveError([("b.py", "second"), ("", "whole"), ("a.py", "first")])
    assert isinstance(error, InvalidInputError)
    assert error.field == "archive" and error.code == "INVALID_INPUT"
    assert error.problems == [("", "whole"), ("a.py", "first"), ("b.py", "second")]
    assert error.message == "archive: 3 problems: whole; a.py: first; b.py: second"
    assert ArchiveError([("x.py", "bad")]).message == "archive: x.py: bad"


def test_archive_error_survives_pickling():
    """As it would crossing a process boundary (a worker validating an upload)."""
    error = ArchiveError([("a.py", "first"), ("", "whole")])
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ArchiveError
    assert again.problems == error.problems and again.message == error.message


# -- the canonical tree --------------------------------------------------------------


def test_tree_hash_is_the_documented_serialization():
    tree = PackageTree((("hooks.py", HOOKS), ("customization.toml", MANIFEST)))
    expected = hashlib.sha256(b"tailor-package-tree-v1\x00")
    for path, data in (("customization.toml", MANIFEST), ("hooks.py", HOOKS)):
        expected.update(path.encode() + b"\x00" + str(len(data)).encode() + b"\x00" + data)
    assert tree.sha256 == expected.hexdigest()
    assert tree.paths == ("customization.toml", "hooks.py")  # sorted whatever the order given
    assert tree.size == len(MANIFEST) + len(HOOKS)
    assert tree.get("hooks.py") == HOOKS and tree.get("nope.py") is None
    assert repr(tree) == f"PackageTree(2 files, {tree.size} bytes, sha256={tree.sha256})"


def test_tree_hash_frames_paths_and_contents():
    base = (("customization.toml", MANIFEST),)
    one = PackageTree((*base, ("a", b"bc")))
    other = PackageTree((*base, ("ab", b"c")))
    assert one.sha256 != other.sha256
    assert PackageTree((*base, ("a", b"x"))).sha256 != PackageTree((*base, ("a", b"y"))).sha256


def test_a_tree_is_always_valid():
    with pytest.raises(ArchiveError) as caught:
        PackageTree((("../evil.py", b""), ("./hooks.py", b""), ("x.pyc", b"")))
    found = problems(caught)
    assert "'..'" in found["../evil.py"]
    assert "canonical" in found["./hooks.py"]
    assert "byte-compiled" in found["x.pyc"]
    assert "missing" in found["customization.toml"]


# -- folders -------------------------------------------------------------------------


def test_sample_package_as_a_tree():
    tree = tree_from_directory(SAMPLE)
    assert tree.paths == ("__init__.py", "customization.toml", "hooks.py")
    assert tree.get("customization.toml") == (SAMPLE / "customization.toml").read_bytes()


def test_relative_and_absolute_paths_give_the_same_tree(monkeypatch):
    monkeypatch.chdir(SAMPLE.parent)
    assert tree_from_directory(Path(SAMPLE.name)) == tree_from_directory(SAMPLE)


def test_same_package_elsewhere_gives_the_same_hash_and_zip(tmp_path):
    """Another folder name, other timestamps and permissions, and the clutter of a
    consultant's machine: same tree, same hash, byte-identical zip."""
    original = tree_from_directory(SAMPLE)
    copy = copy_package(SAMPLE, tmp_path / "somewhere" / "renamed")
    for i, path in enumerate(sorted(copy.rglob("*"))):
        os.utime(path, (1_000_000 + i, 2_000_000_000 - i))
    (copy / "hooks.py").chmod(0o755)
    py_compile.compile(str(copy / "hooks.py"), cfile=str(copy / "__pycache__" / "hooks.pyc"))
    write_package(copy, {".git/HEAD": b"ref", ".DS_Store": b"\0", "x.egg-info/PKG": b""})
    (copy / ".venv").symlink_to(tmp_path)  # ignored: never even looked at
    moved = tree_from_directory(copy)
    assert moved == original
    assert moved.sha256 == original.sha256
    assert build_zip(moved) == build_zip(original)


def test_every_sample_package_round_trips_through_a_zip():
    for folder in sorted((ROOT / "customizations").iterdir()):
        if not (folder / "customization.toml").is_file():
            continue
        tree = tree_from_directory(folder)
        data = build_zip(tree)
        again = read_zip(data)
        assert again == tree and again.sha256 == tree.sha256, folder.name
        assert build_zip(again) == data


def test_subpackages_and_data_files(tmp_path):
    files = {
        "customization.toml": MANIFEST,
        "__init__.py": b"",
        "hooks.py": HOOKS,
        "rules/__init__.py": b"",
        "rules/eur.py": b"RATE = 1\n",
        "data/rates.json": b'{"eur": 1}',
        "data/deep/table.toml": b"a = 1\n",
    }
    tree = tree_from_directory(write_package(tmp_path / "pkg", files))
    assert dict(tree.files) == files
    assert read_zip(build_zip(tree)) == tree


def test_folder_problems_are_reported_together(tmp_path):
    folder = write_package(tmp_path / "pkg", {"hooks.py": HOOKS, "native.so": b"\x7fELF"})
    (folder / "link.py").symlink_to(folder / "hooks.py")
    (folder / "big.json").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    (folder / "Hooks.py").write_bytes(HOOKS)
    with pytest.raises(ArchiveError) as caught:
        tree_from_directory(folder)
    found = problems(caught)
    assert "symbolic link" in found["link.py"]
    assert "native code" in found["native.so"]
    assert str(MAX_FILE_BYTES) in found["big.json"]
    assert "collides with 'Hooks.py'" in found["hooks.py"]
    assert "missing" in found["customization.toml"]


def test_folder_with_too_many_files_stops_reading(tmp_path):
    folder = write_package(tmp_path / "pkg", {"customization.toml": MANIFEST})
    for i in range(MAX_FILES + 5):
        (folder / f"m{i:04}.py").write_bytes(b"")
    with pytest.raises(ArchiveError) as caught:
        tree_from_directory(folder)
    [(path, message)] = caught.value.problems
    assert path == "" and f"more than {MAX_FILES} files" in message


def test_folder_too_deep(tmp_path):
    folder = write_package(tmp_path / "pkg", {"customization.toml": MANIFEST})
    write_package(folder, {"/".join(["d"] * (MAX_PATH_DEPTH + 3)) + "/x.py": b""})
    write_package(folder, {"/".join(["e"] * (MAX_PATH_DEPTH - 1)) + "/ok.py": b""})
    with pytest.raises(ArchiveError) as caught:
        tree_from_directory(folder)
    [(path, message)] = caught.value.problems
    assert path == "/".join(["d"] * MAX_PATH_DEPTH) + "/"
    assert f"deeper than {MAX_PATH_DEPTH}" in message


def test_not_a_folder(tmp_path):
    with pytest.raises(ArchiveError, match="not a folder"):
        tree_from_directory(tmp_path / "missing")


# -- zips: accepted shapes -----------------------------------------------------------


def test_zip_tool_with_a_top_folder_or_without(tmp_path):
    """``zip -r mypkg.zip mypkg`` (top folder and folder entries) and ``zip -r`` from
    inside the folder give the folder's own tree."""
    if shutil.which("zip") is None:
        pytest.skip("the zip tool is not installed")
    copy = copy_package(SAMPLE, tmp_path / "mypkg")
    write_package(copy, {"data/rates.json": b"{}"})
    expected = tree_from_directory(copy)
    subprocess.run(["zip", "-qr", "top.zip", "mypkg"], cwd=tmp_path, check=True)
    subprocess.run(["zip", "-qr", "../flat.zip", "."], cwd=copy, check=True)
    for name in ("top.zip", "flat.zip"):
        tree = read_zip((tmp_path / name).read_bytes())
        assert tree.sha256 == expected.sha256, name


def test_shutil_make_archive_with_a_top_folder(tmp_path):
    copy = copy_package(SAMPLE, tmp_path / "src" / "globex")
    made = shutil.make_archive(
        str(tmp_path / "out"), "zip", root_dir=copy.parent, base_dir="globex"
    )
    assert read_zip(Path(made).read_bytes()) == tree_from_directory(SAMPLE)


def test_stored_entries_and_folder_entries_are_fine():
    data = make_zip(
        ("pkg/", b""),
        ("pkg/customization.toml", MANIFEST),
        ("pkg/sub/", b""),
        ("pkg/sub/x.py", b"X = 1\n"),
        method=zipfile.ZIP_STORED,
    )
    assert read_zip(data).paths == ("customization.toml", "sub/x.py")


# -- zips: refused -------------------------------------------------------------------


def test_oversize_upload_is_refused_before_it_is_opened():
    data = b"not even a zip" * 100
    with pytest.raises(ArchiveError) as caught:
        read_zip(data, limit=100)
    [(path, message)] = caught.value.problems
    assert path == "" and f"{len(data)} bytes" in message and MAX_UPLOAD_BYTES_ENV in message


@pytest.mark.parametrize("data", [b"", b"hello", b"PK\x03\x04" + b"\0" * 60])
def test_not_a_zip(data):
    with pytest.raises(ArchiveError, match="not a zip archive"):
        read_zip(data)


def test_truncated_zip():
    data = package_zip()
    with pytest.raises(ArchiveError, match="not a zip archive"):
        read_zip(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../../etc/x", "'..'"),
        ("sub/../../x.py", "'..'"),
        ("/etc/passwd", "absolute"),
        ("a\\b.py", "backslash"),
        ("C:/x.py", "drive letter"),
        ("ab:c.py", "':'"),
        ("bell\x07.py", "control"),
        ("evil\u202egnp.py", "control"),
    ],
)
def test_unsafe_names(name, words):
    with pytest.raises(ArchiveError) as caught:
        read_zip(package_zip((name, b"x")))
    [(path, message)] = caught.value.problems
    assert words in message
    assert "\x07" not in path  # shown escaped


def test_nul_in_a_name():
    data = package_zip(("aXb.py", b"x")).replace(b"aXb.py", b"a\x00b.py")
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    assert caught.value.problems == [
        (
            "a\\x00b.py",
            "the name holds a NUL, control or invisible formatting character; rename the file",
        )
    ]


def test_links_and_other_special_entries():
    data = package_zip(
        (entry("link.py", stat.S_IFLNK | 0o777), b"/etc/passwd"),
        (entry("fifo", stat.S_IFIFO | 0o644), b""),
    )
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    found = problems(caught)
    assert "symbolic link" in found["link.py"]
    assert "not a regular file" in found["fifo"]


def test_symlink_stored_by_the_zip_tool(tmp_path):
    if shutil.which("zip") is None:
        pytest.skip("the zip tool is not installed")
    copy = copy_package(SAMPLE, tmp_path / "pkg")
    (copy / "passwd").symlink_to("/etc/passwd")
    subprocess.run(["zip", "-qry", "../pkg.zip", "."], cwd=copy, check=True)
    with pytest.raises(ArchiveError) as caught:
        read_zip((tmp_path / "pkg.zip").read_bytes())
    assert list(problems(caught)) == ["passwd"]


def test_byte_compiled_native_and_clutter():
    data = package_zip(
        ("__pycache__/hooks.cpython-311.pyc", b"\0"),
        ("__pycache__/other.cpython-311.pyc", b"\0"),
        ("old.pyc", b"\0"),
        ("sub/opt.pyo", b"\0"),
        ("speedups.cpython-311-x86_64-linux-gnu.so", b"\0"),
        ("win.PYD", b"\0"),
        (".git/HEAD", b"ref"),
        (".git/config", b""),
        (".DS_Store", b""),
    )
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    found = problems(caught)
    assert set(found) == {
        "__pycache__/",  # one problem for the folder, not one per file
        "old.pyc",
        "sub/opt.pyo",
        "speedups.cpython-311-x86_64-linux-gnu.so",
        "win.PYD",
        ".git/",
        ".DS_Store",
    }
    assert "byte-compiled" in found["__pycache__/"] and "byte-compiled" in found["old.pyc"]
    assert "native code" in found["win.PYD"]
    assert "not part of a package" in found[".git/"]


def test_finder_zip_is_refused_for_its_metadata_only():
    data = make_zip(
        ("mypkg/customization.toml", MANIFEST),
        ("mypkg/hooks.py", HOOKS),
        ("__MACOSX/mypkg/._hooks.py", b"\0"),
    )
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    assert list(problems(caught)) == ["__MACOSX/"]


def test_duplicate_and_colliding_names():
    nfd = unicodedata.normalize("NFD", "café.json")
    data = package_zip(
        ("hooks.py", b"other"),
        ("Hooks.py", b"x"),
        ("./data.json", b"1"),
        ("data.json", b"2"),
        ("café.json", b"1"),
        (nfd, b"2"),
        ("sub", b"file"),
        ("sub/x.py", b"folder"),
    )
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    messages = caught.value.problems
    assert ("hooks.py", "the name appears twice; keep one") in messages
    assert ("data.json", "the name appears twice; keep one") in messages  # ./data.json
    assert ("café.json", "the name appears twice; keep one") in messages  # NFD form
    assert any(p == "hooks.py" and "collides with 'Hooks.py'" in m for p, m in messages)
    assert ("sub", "a file with the name of a folder; rename one") in messages


def test_encrypted_entry():
    data = package_zip(("secret.py", b"x"))
    data = patch_headers(data, b"secret.py", (6, 8), "<H", 0x1)
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    assert "encrypted" in problems(caught)["secret.py"]


def test_unsupported_compression():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("customization.toml", MANIFEST)
        archive.writestr("hooks.py", HOOKS, compress_type=zipfile.ZIP_BZIP2)
    with pytest.raises(ArchiveError) as caught:
        read_zip(buffer.getvalue())
    assert "method 12" in problems(caught)["hooks.py"]


def test_non_utf8_name():
    data = package_zip(("café.py", b"x"))
    data = patch_headers(data, "café.py".encode(), (6, 8), "<H", 0)  # drop the UTF-8 flag
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    [(_, message)] = caught.value.problems
    assert "not marked UTF-8" in message


def test_missing_manifest():
    with pytest.raises(ArchiveError) as caught:
        read_zip(make_zip(("hooks.py", HOOKS), ("sub/customization.toml", MANIFEST)))
    assert "missing at the root" in problems(caught)["customization.toml"]


def test_too_many_files():
    many = [(f"m{i}.py", b"") for i in range(MAX_FILES)]
    with pytest.raises(ArchiveError) as caught:
        read_zip(package_zip(*many))
    assert f"more than the {MAX_FILES}" in problems(caught)[""]
    endless = [(f"m{i}.py", b"") for i in range(2 * MAX_FILES + 1)]
    with pytest.raises(ArchiveError, match="entries"):
        read_zip(package_zip(*endless))


def test_long_and_deep_paths():
    long = "x" * (MAX_PATH_LENGTH + 1)
    deep = "/".join(["d"] * MAX_PATH_DEPTH) + "/x.py"
    with pytest.raises(ArchiveError) as caught:
        read_zip(package_zip((long, b""), (deep, b"")))
    found = problems(caught)
    assert "longer than" in found[long]
    assert "deeper than" in found[deep]


def test_honest_bomb_is_refused_by_its_declared_sizes():
    """Declared sizes over the limits: refused without inflating anything."""
    zeros = b"\0" * (MAX_FILE_BYTES + 1)
    data = package_zip(
        ("zeros.bin", zeros), *[(f"z{i}.bin", b"\0" * MAX_FILE_BYTES) for i in range(4)]
    )
    assert len(data) < DEFAULT_MAX_UPLOAD_BYTES
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    found = problems(caught)
    assert str(MAX_FILE_BYTES) in found["zeros.bin"]
    assert "bytes unpacked" in found[""]


def test_bomb_with_a_lying_size_is_read_bounded():
    """A member declaring 100 bytes that inflates to 64 MiB: caught by the bounded
    read and its checksum, without ever holding the 64 MiB."""
    data = package_zip(("bomb.json", b"\0" * (64 * 1024 * 1024)))
    data = patch_headers(data, b"bomb.json", (22, 24), "<I", 100)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveError) as caught:
            read_zip(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = problems(caught)["bomb.json"]
    assert "CRC" in message or "checksum" in message
    assert peak < 16 * 1024 * 1024


def test_forged_checksum():
    data = patch_headers(package_zip(("x.py", b"X = 1\n")), b"x.py", (14, 16), "<I", 0xDEADBEEF)
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    [(path, message)] = caught.value.problems
    assert path == "x.py" and ("checksum" in message or "cannot be unpacked" in message)


def test_several_problems_at_once():
    data = make_zip(
        ("../../etc/x", b"slip"),
        ("/abs.py", b""),
        ("hooks.pyc", b"\0"),
        (entry("link", stat.S_IFLNK | 0o777), b"/etc"),
        ("hooks.py", HOOKS),
    )
    with pytest.raises(ArchiveError) as caught:
        read_zip(data)
    assert [path for path, _ in caught.value.problems] == [
        "../../etc/x",
        "/abs.py",
        "customization.toml",
        "hooks.pyc",
        "link",
    ]
    message = caught.value.message
    assert message.startswith("archive: 5 problems: ")
    for words in ("'..'", "absolute", "missing", "byte-compiled", "symbolic link"):
        assert words in message


# -- the deterministic zip -----------------------------------------------------------


def test_build_zip_metadata_is_fixed():
    tree = tree_from_directory(SAMPLE)
    with zipfile.ZipFile(io.BytesIO(build_zip(tree))) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == list(tree.paths)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == stat.S_IFREG | 0o644
        assert info.compress_type == zipfile.ZIP_DEFLATED


def test_ignored_list_is_skipped_by_folders(tmp_path):
    folder = copy_package(SAMPLE, tmp_path / "pkg")
    for pattern in IGNORED:
        name = pattern.replace("*", "junk")
        write_package(folder, {f"{name}/inside": b"x"} if "." not in name[1:] else {name: b"x"})
    assert tree_from_directory(folder) == tree_from_directory(SAMPLE)


# -- the cache -----------------------------------------------------------------------


def test_materialize_writes_a_read_only_copy(tmp_path):
    tree = read_zip(build_zip(tree_from_directory(ROOT / "customizations" / "hooli_ui_defaults")))
    path = materialize(tree, tmp_path / "cache")
    assert path == tmp_path / "cache" / tree.sha256
    assert tree_from_directory(path) == tree
    assert stat.S_IMODE(path.stat().st_mode) == 0o555
    for name, _ in tree.files:
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o444
    assert verify(path, tree.sha256)
    assert materialize(tree, tmp_path / "cache") == path
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [tree.sha256]


def test_materialize_nested_folders_read_only(tmp_path):
    tree = PackageTree((("customization.toml", MANIFEST), ("a/b/c.json", b"{}")))
    path = materialize(tree, tmp_path)
    assert stat.S_IMODE((path / "a").stat().st_mode) == 0o555
    assert stat.S_IMODE((path / "a" / "b").stat().st_mode) == 0o555
    assert (path / "a" / "b" / "c.json").read_bytes() == b"{}"


def _tamper(path: Path, how: str) -> None:
    os.chmod(path, 0o755)
    if how == "edit":
        os.chmod(path / "hooks.py", 0o644)
        (path / "hooks.py").write_bytes(b"import os; os.system('evil')\n")
    elif how == "extra":
        (path / "sitecustomize.py").write_bytes(b"")
    elif how == "partial":
        os.chmod(path / "hooks.py", 0o644)
        (path / "hooks.py").unlink()
    elif how == "link":
        os.chmod(path / "hooks.py", 0o644)
        (path / "hooks.py").unlink()
        (path / "hooks.py").symlink_to(SAMPLE / "hooks.py")


@pytest.mark.parametrize("how", ["edit", "extra", "partial", "link"])
def test_a_tampered_copy_is_detected_and_replaced(tmp_path, how):
    tree = tree_from_directory(SAMPLE)
    path = materialize(tree, tmp_path)
    _tamper(path, how)
    assert not verify(path, tree.sha256)
    assert materialize(tree, tmp_path) == path
    assert verify(path, tree.sha256)
    assert (path / "hooks.py").read_bytes() == tree.get("hooks.py")
    assert [p.name for p in tmp_path.iterdir()] == [tree.sha256]  # nothing left behind


def test_an_empty_folder_in_place_is_replaced(tmp_path):
    tree = tree_from_directory(SAMPLE)
    (tmp_path / tree.sha256).mkdir()
    assert verify(materialize(tree, tmp_path), tree.sha256)


def test_a_link_in_place_is_replaced_not_followed(tmp_path):
    tree = tree_from_directory(SAMPLE)
    elsewhere = materialize(tree, tmp_path / "elsewhere")  # even a valid copy
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / tree.sha256).symlink_to(elsewhere)
    path = materialize(tree, cache)
    assert not path.is_symlink() and verify(path, tree.sha256)
    assert verify(elsewhere, tree.sha256)  # the link was removed, its target untouched


def test_leftovers_of_crashed_processes_are_swept(tmp_path):
    old = write_package(tmp_path / ".tmp-0123456789abcdef-dead", {"x.py": b""})
    bad = write_package(tmp_path / ".bad-dead", {"copy/x.py": b""})
    (bad / "copy").chmod(0o555)
    young = write_package(tmp_path / ".tmp-0123456789abcdef-busy", {"x.py": b""})
    hour_ago = time.time() - STALE_SECONDS - 1
    for folder in (old, bad):
        os.utime(folder, (hour_ago, hour_ago))
    tree = tree_from_directory(SAMPLE)
    materialize(tree, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([tree.sha256, young.name])


def test_verify_rejects_the_wrong_hash_and_missing_folders(tmp_path):
    tree = tree_from_directory(SAMPLE)
    path = materialize(tree, tmp_path)
    assert not verify(path, "0" * 64)
    assert not verify(tmp_path / "missing", tree.sha256)


def test_concurrent_threads_materialize_one_valid_copy(tmp_path):
    tree = tree_from_directory(SAMPLE)
    for round_ in range(20):
        root = tmp_path / f"round{round_}"
        start = threading.Barrier(8)

        def work(_: int, root: Path = root, start: threading.Barrier = start) -> Path:
            start.wait()
            return materialize(tree, root)

        with ThreadPoolExecutor(8) as pool:
            paths = set(pool.map(work, range(8)))
        assert paths == {root / tree.sha256}
        assert verify(root / tree.sha256, tree.sha256)
        assert [p.name for p in root.iterdir()] == [tree.sha256]  # no staging left


def test_concurrent_threads_replace_a_tampered_copy(tmp_path):
    tree = tree_from_directory(SAMPLE)
    path = materialize(tree, tmp_path)
    _tamper(path, "edit")
    start = threading.Barrier(8)

    def work(_: int) -> Path:
        start.wait()
        return materialize(tree, tmp_path)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    assert set(results) == {path}
    assert verify(path, tree.sha256)
    assert [p.name for p in tmp_path.iterdir()] == [tree.sha256]


def _materialize_in_a_process(args: tuple[bytes, str, float]) -> str:
    data, root, at = args
    tree = read_zip(data)
    time.sleep(max(0.0, at - time.time()))  # start together
    return str(materialize(tree, Path(root)))


def test_concurrent_processes_materialize_one_valid_copy(tmp_path):
    tree = tree_from_directory(SAMPLE)
    data = build_zip(tree)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=context) as pool:
        list(pool.map(abs, range(4)))  # the workers are up
        at = time.time() + 0.5
        paths = set(pool.map(_materialize_in_a_process, [(data, str(tmp_path), at)] * 4))
    assert paths == {str(tmp_path / tree.sha256)}
    assert verify(tmp_path / tree.sha256, tree.sha256)
    assert [p.name for p in tmp_path.iterdir()] == [tree.sha256]


# -- properties ----------------------------------------------------------------------

_component = st.text(alphabet=st.sampled_from("abcXYZ019_-.éß"), min_size=1, max_size=8).filter(
    lambda c: c not in (".", "..") and not c.endswith((".pyc", ".pyo", ".so", ".dll"))
)
_trees = st.dictionaries(
    st.lists(_component, min_size=1, max_size=3).map("/".join),
    st.binary(max_size=200),
    max_size=12,
)


def _valid(files: dict[str, bytes]) -> dict[str, bytes] | None:
    files = {"customization.toml": MANIFEST, **files}
    try:
        PackageTree(tuple(files.items()))
    except ArchiveError:
        return None  # collisions (case, file and folder) are generated too
    return files


@settings(max_examples=60, deadline=None)
@given(_trees)
def test_any_valid_tree_round_trips_through_a_zip(files):
    files = _valid(files)
    assume(files is not None)
    tree = PackageTree(tuple(files.items()))
    data = build_zip(tree)
    again = read_zip(data)
    assert again == tree and again.sha256 == tree.sha256
    assert build_zip(again) == data
    reordered = PackageTree(tuple(reversed(tree.files)))
    assert reordered.sha256 == tree.sha256


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_corrupted_zip_gives_a_typed_error_or_a_valid_tree(data):
    """Whatever bytes an upload holds, the answer is a tree or an ArchiveError."""
    original = build_zip(tree_from_directory(SAMPLE))
    blob = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    try:
        tree = read_zip(bytes(blob))
    except ArchiveError as error:
        assert error.problems and all(message for _, message in error.problems)
    else:
        assert MANIFEST_NAME in tree.paths


def test_the_module_loads_nothing_beyond_the_standard_library_and_the_error_type():
    """A worker may validate or materialize without loading pluggy, packaging or a
    database layer (checked in a fresh interpreter)."""
    code = (
        "import sys, plugins.archive; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('api', 'core', 'plugins', 'packaging', 'pluggy', 'sqlalchemy', 'strawberry')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(
        ["core", "core.model", "core.model.errors", "plugins", "plugins.archive"]
    )
