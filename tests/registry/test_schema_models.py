"""The migrations build exactly the schema the models declare: every table, column and index
of a model is made by a migration, and no migration makes one that no model declares. A model
change without its migration (or the reverse) fails here rather than on a deployed database."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import registry
from registry.db import migrate
from registry.models import Base

pytestmark = pytest.mark.no_database


def _import_every_registry_module() -> None:
    """Every model class registers its table on ``Base.metadata`` when its module loads."""
    for module in pkgutil.walk_packages(registry.__path__, prefix="registry."):
        if module.name.endswith("__main__") or ".migrations" in module.name:
            continue
        importlib.import_module(module.name)


def test_the_migrations_build_the_models_schema(tmp_path: Path) -> None:
    _import_every_registry_module()
    engine = create_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
    assert "ix_credit_records_decision" in {
        index.name for index in Base.metadata.tables["credit_records"].indexes
    }
