"""Alembic migrations (async env, one linear history). Run with ``tailor db upgrade``."""
