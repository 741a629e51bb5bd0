"""CLI: ``tailor foldback`` in every format, on the demo with its samples."""

from __future__ import annotations

import json

import pytest_asyncio
from typer.testing import CliRunner

from api.cli.main import app
from tests.conftest import demo_with_samples

runner = CliRunner()


@pytest_asyncio.fixture
async def demo(services, database_url, monkeypatch):
    await demo_with_samples(services)
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    return services


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_json_lists_candidates_with_score_parts(demo):
    result = invoke("foldback", "--format", "json", "--limit", "50")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert "never uses what a client pays" in data["explanation"]
    first = data["candidates"][0]
    assert first["score"]["total"] == 2 * first["score"]["breadth"] + first["score"]["upgrade_cost"]
    assert {c["kind"] for c in data["candidates"]} == {
        "SHARED_CAPABILITY",
        "NEAR_DUPLICATE_CODE",
        "CHANGE_DEFAULT",
        "SHOULD_BE_SETTING",
    }
    assert any(r["kind"] == "SETTING_NEVER_OVERRIDDEN" for r in data["retire"])


def test_table_and_markdown(demo):
    table = invoke("foldback", "--limit", "3")
    assert table.exit_code == 0 and "Fold-back candidates" in table.stdout
    markdown = invoke("foldback", "--format", "markdown")
    assert markdown.exit_code == 0
    assert markdown.stdout.startswith("# Fold-back candidates")
    assert "| 1 |" in markdown.stdout and "## Candidates to retire" in markdown.stdout


def test_bad_limit_is_refused(demo):
    result = invoke("foldback", "--limit", "0")
    assert result.exit_code == 2


def test_a_format_it_cannot_print_is_refused_not_replaced(demo):
    """foldback has no HTML page: asked for one it exits 2 naming what it prints,
    instead of printing a table."""
    result = invoke("foldback", "--format", "html")
    assert result.exit_code == 2
    assert "'html' is not one of 'table', 'json', 'markdown'" in result.stderr
    assert "score" not in result.stdout
