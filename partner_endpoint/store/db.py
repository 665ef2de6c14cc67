"""Engine construction and transactions for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Connection,
    CursorResult,
    Engine,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

_IMMEDIATE = "soundpiece_immediate"


class NotFound(LookupError):
    """No such account or key (or not one the asker may see): a 404, or exit 2 on the command line."""


def make_engine(database_url: str) -> Engine:
    """An engine tuned per backend: SQLite gets WAL, a busy timeout and foreign keys."""
    url = make_url(database_url)
    # hide_parameters: an error's text names the statement, not its values (an owner's address, a
    # label, a client's address). Errors are logged, and a log must not hold those.
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True)
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        _create_private(url.database)
    # A pool as large as the thread pool: overflow connections are closed after use, and reopening
    # (with its PRAGMAs) under load costs more than keeping them.
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=40,
        max_overflow=10,
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # 1 MiB of page cache per connection instead of 2 MiB: with 50 pooled connections in
        # each worker, SQLite's caches were most of the memory a long soak grew into.
        cursor.execute("PRAGMA cache_size=-1024")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A read transaction that later writes fails at once with SQLITE_BUSY if another
        # process wrote meanwhile; writers therefore take the write lock up front.
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _create_private(path: str) -> None:
    """Create the database file owner-only (0600), like the key file: it holds every key's hash and the
    encrypted signing secrets. SQLite gives its -wal and -shm files the database file's permissions."""
    with contextlib.suppress(FileExistsError, FileNotFoundError):  # no folder: SQLite reports it
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key an ``INSERT`` of one row gave it."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that will write: committed on success, rolled back on error."""
    with engine.connect() as connection:
        connection.execution_options(**{_IMMEDIATE: True})
        with connection.begin():
            yield connection


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection, connection.begin():
        yield connection


Upsert = postgresql.Insert | sqlite.Insert
"""An ``INSERT`` that can say what to do ``ON CONFLICT`` (both dialects spell it alike)."""


def upsert(connection: Connection, table: Table) -> Upsert:
    """``INSERT`` with the dialect's ``ON CONFLICT`` support (SQLite and PostgreSQL share the syntax)."""
    return dialect_insert(connection.dialect.name, table)


def dialect_insert(dialect_name: str, table: Table) -> Upsert:
    """:func:`upsert` for a dialect by name, for statements built once and reused."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# --- many values in one statement ---------------------------------------------------------------------
#
# A batch of 10,000 keys must not cost 10,000 statements, nor statements with 10,000 placeholders:
# building and parsing those took longer than running them. PostgreSQL gets each list as one array
# parameter (``= ANY(:list)``, ``INSERT … SELECT FROM unnest(:column, …)``), so a statement is short
# and the same for every batch size; SQLite gets ``IN (…)`` lists of at most ``SQLITE_CHUNK`` values
# (far below its parameter limit) and executemany for inserts.

SQLITE_CHUNK = 500
T = TypeVar("T")


def one_of(column: Column[Any], name: str, dialect_name: str) -> ColumnElement[bool]:
    """``column IN :name`` for a list given at execution, in :func:`chunks`."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def chunks(values: Sequence[T], dialect_name: str) -> Iterator[list[T]]:
    """The values for :func:`one_of`: all at once on PostgreSQL, else ``SQLITE_CHUNK`` at a time."""
    size = len(values) if dialect_name == "postgresql" else SQLITE_CHUNK
    for start in range(0, len(values), max(size, 1)):
        yield list(values[start : start + size])


def stage(
    conn: Connection, name: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]
) -> None:
    """``rows`` into a temporary table ``name`` of this transaction, for one set-based statement to read.

    The fastest way in for a large write: on PostgreSQL a binary ``COPY`` (100,000 rows in ~50 ms,
    where one array parameter per column spends ~400 ms quoting in the driver), into a table
    dropped at commit; on SQLite an ``executemany`` into a connection's temporary table, emptied
    first. ``columns`` are (name, type) pairs; the types are PostgreSQL's names, which SQLite reads
    by affinity."""
    listed = ", ".join(f"{column} {kind}" for column, kind in columns)
    if conn.dialect.name != "postgresql":
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({listed})")
        conn.exec_driver_sql(f"DELETE FROM {name}")
        placeholders = ", ".join("?" * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {name} VALUES ({placeholders})", list(rows))
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {name} ({listed}) ON COMMIT DROP")
        with cursor.copy(f"COPY {name} FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([kind for _column, kind in columns])
            for row in rows:
                copy.write_row(row)


def insert_many(dialect_name: str, table: Table, columns: Sequence[str]) -> Upsert:
    """An ``INSERT`` (with the dialect's ``ON CONFLICT``) of many rows; execute it with :func:`rows_of`."""
    insert = dialect_insert(dialect_name, table)
    if dialect_name != "postgresql":
        return insert
    arrays = (
        func.unnest(*(bindparam(c, type_=ARRAY(table.c[c].type)) for c in columns))
        .table_valued(*columns)
        .render_derived(name="rows")
    )
    return insert.from_select(list(columns), select(*(arrays.c[c] for c in columns)))


def rows_of(
    dialect_name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> list[Mapping[str, Any]] | dict[str, list[Any]]:
    """The parameters of :func:`insert_many`: one list per column on PostgreSQL, else the rows."""
    if dialect_name != "postgresql":
        return list(rows)
    return {c: [row[c] for row in rows] for c in columns}
