"""The documentation says what the code says: generated blocks are up to date, links between
the pages resolve, and the tests the architecture page cites exist."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from claims_api import docgen
from claims_api.cli import app
from claims_api.config import Settings

ROOT = docgen.REPOSITORY_ROOT
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def test_committed_docs_match_the_generator():
    outcomes = docgen.run(check=True)
    assert ROOT / "docs" / "configuration.md" in [o.path for o in outcomes]
    stale = [str(o.path.relative_to(ROOT)) for o in outcomes if o.changed]
    assert not stale, f"run `freshclaim docs` and commit: {stale} differ from the generator"


def test_the_cli_checks_the_docs():
    result = CliRunner().invoke(app, ["docs", "--check"])
    assert result.exit_code == 0, result.output


def test_every_setting_has_a_description_and_a_row():
    page = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description"
        assert f"| `FRESHCLAIM_{name.upper()}` |" in page


def test_a_block_is_rewritten_between_its_markers_only():
    text = (
        "intro\n<!-- generated:settings:start -->\nold table\n<!-- generated:settings:end -->\n"
        "<!-- generated:reason-codes:start -->\nhand-kept\n<!-- generated:reason-codes:end -->\n"
        "outro\n"
    )
    generators = {"settings": lambda: "new table\n", "reason-codes": lambda: "hand-kept\n"}
    fresh = docgen.rewrite(text, generators)
    assert fresh == text.replace("old table", "new table")
    assert docgen.rewrite(fresh, generators) == fresh


def test_an_unknown_or_unclosed_block_is_an_error():
    with pytest.raises(docgen.DocsError, match="no generator"):
        docgen.rewrite("<!-- generated:typo:start -->\nx\n<!-- generated:typo:end -->\n")
    with pytest.raises(docgen.DocsError, match="no matching end"):
        docgen.rewrite("<!-- generated:settings:start -->\nx\n")


def test_a_setting_without_a_description_cannot_be_documented():
    from pydantic_settings import BaseSettings

    class Undocumented(BaseSettings):
        quiet: int = 1

    with pytest.raises(docgen.DocsError, match="quiet"):
        docgen.settings_table(Undocumented)


def test_defaults_are_shown_as_an_operator_writes_them():
    table = docgen.settings_table()
    assert "| `FRESHCLAIM_MODEL_DIR` | Path | `models/` |" in table  # not this machine's path
    assert "`20971520` (20 MiB)" in table
    assert "| `FRESHCLAIM_BACKGROUND_WORKERS` | bool | `true` |" in table
    assert "`FRESHCLAIM_UPLOAD_BYTES_IN_FLIGHT`." in table  # a field named in a description


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces to hyphens."""
    text = heading.strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return kept.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text("utf-8"))
    return {_slug(m[1]) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, re.MULTILINE)}


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text("utf-8"))
    return LINK.findall(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_and_headings_that_exist(page: Path):
    if not page.exists():
        pytest.skip(f"{page.name} is not in this checkout")
    broken = []
    for target in _links(page):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists() or (
            anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
        ):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_the_tests_the_architecture_page_cites_exist():
    cited = set(re.findall(r"`(test_\w+)`", (ROOT / "docs" / "architecture.md").read_text()))
    assert cited
    defined = {
        m[1]
        for path in (ROOT / "tests").rglob("test_*.py")
        for m in re.finditer(r"^\s*(?:async )?def (test_\w+)", path.read_text("utf-8"), re.M)
    }
    assert cited <= defined, f"cited but not defined: {sorted(cited - defined)}"
