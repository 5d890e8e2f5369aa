"""Alembic migrations of the registry database (run by :func:`registry.db.migrate`)."""
