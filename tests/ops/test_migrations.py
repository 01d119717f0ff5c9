"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from claims_api.models import Base


def test_migrated_schema_matches_the_models(migrated_url):
    engine = create_engine(migrated_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_migrate_says_whether_it_created_upgraded_or_found_the_schema(tmp_path, monkeypatch):
    from alembic import command
    from typer.testing import CliRunner

    from claims_api.cli import app
    from claims_api.config import get_settings
    from claims_api.migrate import alembic_config, current_revision

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("FRESHCLAIM_HOME", str(tmp_path))
    monkeypatch.setenv("FRESHCLAIM_DATABASE_URL", url)

    def migrate() -> str:
        get_settings.cache_clear()  # the CLI reads its settings from this environment
        try:
            result = CliRunner().invoke(app, ["migrate"])
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        return result.output

    assert "created the schema" in migrate()
    assert "is up to date" in migrate()
    command.downgrade(alembic_config(url), "-1")
    previous = current_revision(url)
    assert previous is not None
    assert f"from revision {previous} to" in migrate()
