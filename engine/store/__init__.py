"""The journal store (SQLAlchemy Core): SQLite by default, PostgreSQL in production, same code."""

from engine.store.journal import Store

__all__ = ["Store"]
