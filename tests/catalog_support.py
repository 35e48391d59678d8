"""Stores for the catalog tests: a SQLite file in tmp, and a fresh PostgreSQL database per test
when DETLENS_TEST_POSTGRES_URL names a server (.ci/run starts one); never the user's store."""
from __future__ import annotations

import os
import uuid

import pytest

POSTGRES_ENV = "DETLENS_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]


def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (a server URL, e.g. postgresql://user@127.0.0.1:5432/"
                    "postgres); .ci/run starts a throwaway cluster and sets it")
    return url


def make_store(backend: str, tmp_path):
    """(url, cleanup) of an empty store of this backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}", lambda: None
    import psycopg
    import sqlalchemy as sa

    admin = sa.engine.make_url(postgres_admin_url())
    name = f"detlens_test_{uuid.uuid4().hex[:12]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        from core.catalog.store import Catalog  # noqa: F401 - engines are disposed by the tests
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return admin.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    url, cleanup = make_store(request.param, tmp_path)
    yield url
    cleanup()
