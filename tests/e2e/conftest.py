"""Fixtures for end-to-end tests: a fresh PostgreSQL database per test."""

from __future__ import annotations

import pytest

from tests.conftest import migrated_pg_database


@pytest.fixture
def fresh_pg():
    """A new, migrated PostgreSQL database of this test's own (its processes share it)."""
    with migrated_pg_database("losslens_e2e") as url:
        yield url
