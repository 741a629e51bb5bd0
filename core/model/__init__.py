"""The domain's values and rules: no database, no I/O (import-linter keeps SQLAlchemy out)."""
