"""``tailor serve`` reads the GraphQL limits and the hook time budget from the
environment at start-up, and refuses bad values clearly."""

import pytest

from tests.cli.test_cli import tailor


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TAILOR_MAX_DEPTH", "deep"),
        ("TAILOR_MAX_ALIASES", "0"),
        ("TAILOR_HOOK_TIMEOUT", "-1"),
        ("TAILOR_HOOK_PROCESSES", "0"),
        ("TAILOR_HOOK_MEMORY_MB", "lots"),
        ("TAILOR_SHUTDOWN_GRACE", "-5"),
        ("TAILOR_SHUTDOWN_GRACE", "soon"),
        ("TAILOR_METRICS_CUSTOMIZATIONS", "0"),
    ],
)
def test_bad_limits_stop_serve_with_exit_2(tmp_path, name, value):
    result = tailor("serve", cwd=tmp_path, env={name: value}, timeout=60)
    assert result.returncode == 2, result.stderr
    assert name.removeprefix("TAILOR_").lower() in result.stderr.lower()
