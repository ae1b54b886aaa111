"""The bulk writer: many rows into a table at the speed of the driver, in the session's
transaction (executemany on SQLite, COPY on PostgreSQL), and key lookups of thousands of
values in one parameter. An importer hands it rows; it knows nothing of what they mean.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def among(column: Any, values: Iterable[Any], *, postgres: bool) -> ColumnElement[bool]:
    """column IN (values) with the values as one parameter, not thousands.

    A chunk looks up thousands of keys or ids; a bound parameter for each costs more than
    the lookup, and SQLite allows at most 32,766. PostgreSQL takes an array (= ANY), SQLite
    a JSON array (json_each); both use the column's index.
    """
    if postgres:
        items = sorted(set(values))
        kind = Integer if items and isinstance(items[0], int) else String
        return column == any_(bindparam(None, items, type_=postgresql.ARRAY(kind)))
    listed = json.dumps(list(set(values)))  # in any order: sorting thousands costs
    each = func.json_each(bindparam(None, listed, type_=String)).table_valued("value")
    return column.in_(select(each.c.value))


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(table), rows)


class BulkInsert:
    """Many rows handed straight to the driver: executemany on SQLite, COPY on PostgreSQL.

    SQLAlchemy compiles the INSERT and supplies its own bind processors (UTC datetimes,
    JSON, booleans), so what is stored is exactly what a Core insert stores; what is skipped
    is its per-row parameter handling, which costs more than SQLite's own work (and
    psycopg's pipelined executemany more than PostgreSQL's; COPY avoids both). Values the
    same in every row (constants) are processed once.
    """

    def __init__(self, session: Session, table: Table, columns: Sequence[str]) -> None:
        self.session = session
        dialect = session.get_bind().dialect
        wanted = set(columns)
        self.names = [column.name for column in table.columns if column.name in wanted]
        self.copy = dialect.name == "postgresql"
        if self.copy:
            quote = dialect.identifier_preparer.quote
            self.sql = (
                f"COPY {dialect.identifier_preparer.format_table(table)} "
                f"({', '.join(quote(name) for name in self.names)}) FROM STDIN"
            )
        else:
            compiled = insert(table).compile(dialect=dialect, column_keys=self.names)
            if not dialect.positional or list(compiled.positiontup or ()) != self.names:
                raise RuntimeError(f"unexpected parameters for {table.name}")  # pragma: no cover
            self.sql = str(compiled)
        self.processors = {
            name: processor
            for name in self.names
            if (processor := table.columns[name].type._cached_bind_processor(dialect))
        }
        self.getter = itemgetter(*self.names)
        self.rows: list[tuple[Any, ...]] = []
        self.table, self.dialect = table, dialect
        self.statements: dict[tuple[str, ...], str] = {tuple(self.names): self.sql}
        # Columns an INSERT may leave out when they hold no value: nullable, and NULL by
        # default in the table as it is (SQLite only; COPY takes every column).
        self.omissible: set[str] = set()
        if not self.copy:
            described = session.connection().exec_driver_sql(
                f"PRAGMA table_info({dialect.identifier_preparer.format_table(table)})"
            )
            self.omissible = {
                name
                for _cid, name, _type, notnull, default, _pk in described
                if not notnull and default is None and name in wanted
            }

    def _statement(self, names: tuple[str, ...]) -> str:
        """The INSERT of these columns (given in table column order)."""
        sql = self.statements.get(names)
        if sql is None:
            compiled = insert(self.table).compile(dialect=self.dialect, column_keys=list(names))
            if list(compiled.positiontup or ()) != list(names):
                raise RuntimeError(
                    f"unexpected parameters for {self.table.name}"
                )  # pragma: no cover
            sql = self.statements[names] = str(compiled)
        return sql

    def processed(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values as the driver takes them (for constants: do it once)."""
        for name, processor in self.processors.items():
            if name in values:
                values[name] = processor(values[name])
        return values

    def add(self, values: dict[str, Any], varying: Sequence[str] = ()) -> None:
        """Queue a row; `varying` names the processed columns whose values are not constants."""
        for name in varying:
            values[name] = self.processors[name](values[name])
        self.rows.append(self.getter(values))

    def process(self, name: str, items: list[Any]) -> list[Any]:
        """A column's values as the driver takes them."""
        processor = self.processors.get(name)
        return [processor(item) for item in items] if processor else items

    def write_columns(self, columns: dict[str, Sequence[Any] | None]) -> None:
        """Write rows given column by column (processed; None: NULL in every row) now.

        On SQLite a column that is NULL in every row and NULL by default is left out of the
        INSERT: the rows stored are the same, and SQLite takes them a quarter faster.
        """
        count = max((len(column) for column in columns.values() if column is not None), default=0)
        names = tuple(
            name
            for name in self.names
            if name not in self.omissible
            or (
                (column := columns[name]) is not None and any(value is not None for value in column)
            )
        )
        self.flush()
        self.rows = list(
            zip(
                *(
                    repeat(None, count) if (column := columns[name]) is None else column
                    for name in names
                ),
                strict=True,
            )
        )
        self.flush(names)

    def add_row(self, row: tuple[Any, ...]) -> None:
        """Queue one row given as a tuple in table column order, already processed."""
        self.rows.append(row)

    def add_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Queue rows given as tuples in table column order, needing no processing."""
        self.rows.extend(rows)

    def flush(self, names: tuple[str, ...] | None = None) -> None:
        """Write the queued rows in one executemany (SQLite) or COPY (PostgreSQL); `names`
        are the columns the rows hold when they are not all the writer's."""
        rows, self.rows = self.rows, []
        if not rows:
            return
        connection = self.session.connection()
        if names is not None and names != tuple(self.names):
            if self.copy:
                raise RuntimeError("COPY takes every column")  # pragma: no cover
            connection.exec_driver_sql(self._statement(names), rows)
        elif self.copy:
            cursor = connection.connection.cursor()  # the transaction's own connection
            driver_error = self.dialect.loaded_dbapi.Error
            try:
                with cursor.copy(self.sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            except driver_error as error:
                # COPY bypasses SQLAlchemy, which would have wrapped the driver's error: do it
                # here, so a key someone else took meanwhile is the IntegrityError callers
                # handle ("import the file again"), not a bare psycopg UniqueViolation.
                raise DBAPIError.instance(
                    self.sql, None, error, driver_error, dialect=self.dialect
                ) from error
            finally:
                cursor.close()
        else:
            connection.exec_driver_sql(self.sql, rows)
