"""Publishing a customization as an archive: what each step costs on a generated
package, and the ratio of each to reading the folder.

    python bench/archive.py [--files 100] [--file-bytes 4000] [--rounds 30]

Steps, each timed alone, medians of ``--rounds`` runs:

* ``tree_from_directory``: the consultant's side, reading the folder;
* ``build_zip``: the deterministic zip of the tree;
* ``read_zip``: the server validating the upload (names, kinds, bounded reads, CRCs);
* ``sha256``: the canonical tree's hash (computed once per tree, then cached);
* ``materialize``: writing the version into an empty cache (temporary folder, rename);
* ``materialize, cached``: a version already in the cache (``verify``: read and hash);
* ``verify``: recomputing a cached copy's hash.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from plugins.archive import (
    PackageTree,
    build_zip,
    materialize,
    read_zip,
    tree_from_directory,
    verify,
)

MANIFEST = 'name = "bench-pkg"\nversion = "1.0.0"\ntenants = ["acme"]\nrequires = ">=1.0"\n'


def generate(folder: Path, files: int, size: int, seed: int = 1) -> None:
    """A package of ``files`` files: Python modules in a few subpackages, some JSON."""
    rng = random.Random(seed)
    (folder / "customization.toml").parent.mkdir(parents=True)
    (folder / "customization.toml").write_text(MANIFEST)
    for i in range(files - 1):
        sub = folder / f"part{i % 5}"
        sub.mkdir(exist_ok=True)
        if i % 10 == 9:
            path = sub / f"data{i}.json"
            body = "{" + ", ".join(f'"k{j}": {rng.random()}' for j in range(size // 24)) + "}"
        else:
            path = sub / f"module{i}.py"
            lines = [f"VALUE_{j} = {rng.randrange(10**9)}  # rule {j}" for j in range(size // 32)]
            body = "\n".join(lines) + "\n"
        path.write_text(body[:size])


def median_ms(step: Callable[[], object], rounds: int, setup: Callable[[], None] | None = None):
    times = []
    for _ in range(rounds):
        if setup is not None:
            setup()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--file-bytes", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder = root / "pkg"
        generate(folder, args.files, args.file_bytes)
        tree = tree_from_directory(folder)
        data = build_zip(tree)
        cache = root / "cache"

        def empty_cache() -> None:
            if cache.exists():
                for path in [cache, *cache.rglob("*")]:
                    if path.is_dir():
                        path.chmod(0o755)
                shutil.rmtree(cache)

        def fresh_hash() -> str:
            return PackageTree(tree.files).sha256  # a new tree: its hash is not cached yet

        figures = {
            "tree_from_directory": median_ms(lambda: tree_from_directory(folder), args.rounds),
            "build_zip": median_ms(lambda: build_zip(tree), args.rounds),
            "read_zip": median_ms(lambda: read_zip(data), args.rounds),
            "sha256 (with tree checks)": median_ms(fresh_hash, args.rounds),
            "materialize": median_ms(lambda: materialize(tree, cache), args.rounds, empty_cache),
        }
        materialize(tree, cache)
        figures["materialize, cached"] = median_ms(lambda: materialize(tree, cache), args.rounds)
        target = cache / tree.sha256
        figures["verify"] = median_ms(lambda: verify(target, tree.sha256), args.rounds)
    print(
        f"package: {len(tree.files)} files, {tree.size} bytes unpacked, zip {len(data)} bytes; "
        f"median of {args.rounds} rounds"
    )
    base = figures["tree_from_directory"]
    print(f"{'step':<28}{'ms':>9}{'/ folder read':>15}")
    for step, ms in figures.items():
        print(f"{step:<28}{ms:>9.2f}{ms / base:>15.2f}")
    publish = figures["tree_from_directory"] + figures["build_zip"]
    serve = figures["read_zip"] + figures["materialize"]
    print(f"consultant side (read folder + zip): {publish:.2f} ms")
    print(f"server side (read_zip + materialize): {serve:.2f} ms")


if __name__ == "__main__":
    main()
