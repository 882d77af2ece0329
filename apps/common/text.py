"""Text from users, made safe to store and to search."""

from __future__ import annotations


def search_text(value: str) -> str:
    """A search box's text as the database can take it: PostgreSQL text refuses NUL characters."""
    return value.replace("\x00", "").strip()
