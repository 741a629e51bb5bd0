"""The static analysis on hostile or odd input: never imports, never reads
outside the package, bounded work."""

from __future__ import annotations

import os
import textwrap

from plugins.evidence import analyze_package


def write(path, files):
    for name, text in files.items():
        file = path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(textwrap.dedent(text))
    return path


def test_the_code_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    pkg = write(
        tmp_path / "pkg",
        {
            "hooks.py": f"""
            import pluggy
            open({str(marker)!r}, "w").write("x")
            hookimpl = pluggy.HookimplMarker("tailor")

            @hookimpl
            def tailor_resolve_settings(values):
                return {{"ui.theme.mode": "dark"}}
            """
        },
    )
    evidence = analyze_package(pkg)
    assert [h.use.hook for h in evidence.hooks] == ["tailor_resolve_settings"]
    assert evidence.keys == ("ui.theme.mode",)
    assert not marker.exists()


def test_symlinks_out_of_the_package_are_not_read(tmp_path):
    outside = tmp_path / "secret.py"
    outside.write_text('TOKEN = "security.sso.metadata_url"\nprint(TOKEN)\n')
    pkg = write(tmp_path / "pkg", {"hooks.py": "x = 1\n"})
    os.symlink(outside, pkg / "linked.py")
    assert analyze_package(pkg).keys == ()


def test_huge_strings_and_deep_nesting_are_bounded(tmp_path):
    doubling = "\n".join(
        ["A0 = 'ui.theme.mode'"] + [f"A{i} = A{i - 1} + A{i - 1}" for i in range(1, 80)]
    )
    wide = "W = '{:>999999999}'.format('x')\nP = '%999999999s' % 'x'\nprint(W, P, A79)\n"
    nested = "D = " + "(" * 3000 + "1" + ")" * 3000 + "\n"
    chain = "C = " + " + ".join(["'a'"] * 20000) + "\nprint(C)\n"
    pkg = write(
        tmp_path / "pkg",
        {"hooks.py": doubling + "\n" + wide, "nested.py": nested, "chain.py": chain},
    )
    evidence = analyze_package(pkg, known_keys={"ui.theme.mode"})
    assert evidence.keys == ("ui.theme.mode",)  # A0, used by A1
    problems = dict(evidence.problems)
    assert any(where.startswith("nested.py") for where in problems)
    assert problems["chain.py"] == "too deeply nested to analyze"


def test_syntax_errors_are_problems_with_file_and_line(tmp_path):
    pkg = write(tmp_path / "pkg", {"hooks.py": "def oops(:\n    pass\n"})
    ((where, message),) = analyze_package(pkg).problems
    assert where == "hooks.py:1" and "invalid syntax" in message
