"""What one figure aggregates over: a table's rows in a period, joined to their conversation (for
the channel), and the keys they can be grouped by (day and week portably on SQLite and
PostgreSQL); and the aggregates run over them, for the whole period or per group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Date, FromClause, Select, Table, case, cast, extract, func, literal_column, select
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.util import find_tables

# The whole period, as the key of an ungrouped aggregate.
TOTAL = "total"
# Rows whose key is empty: a ticket nobody claimed, a message nobody parsed.
NO_KEY = "(none)"
_GROUP_KEY = "group_key"
Expression = ColumnElement[Any] | QueryableAttribute[Any]


@dataclass(frozen=True)
class Rows:
    """Rows of `source` meeting `conditions`; `when` is the moment each happened (epoch seconds
    when `epoch`), `keys` the other columns they can be grouped by (channel, intent, agent...).

    `lookups` are tables joined to `source` (table, ON clause) only when a condition or a selected
    column reads them; each must match exactly one row of `source` (a foreign key's), so joining
    it or not never changes which rows there are.
    """

    source: FromClause
    conditions: tuple[ColumnElement[bool], ...]
    when: Expression
    epoch: bool
    keys: Mapping[str, Expression]
    lookups: tuple[tuple[Table, ColumnElement[bool]], ...] = ()

    def where(self, *conditions: ColumnElement[bool]) -> Rows:
        """These rows, only those meeting `conditions` too."""
        return replace(self, conditions=(*self.conditions, *conditions))

    def select(self, *columns: Any) -> Select[Any]:
        # PostgreSQL keeps an inner join nobody reads: on 10M events joining the conversations
        # for their channel cost a second a figure (benchmarks/README.md, "Scorecard at scale").
        read = {table for clause in (*columns, *self.conditions) for table in find_tables(clause, check_columns=True)}
        source = self.source
        for table, on in self.lookups:
            if table in read:
                source = source.join(table, on)
        return select(*columns).select_from(source).where(*self.conditions)

    def key(self, by: str, dialect: str) -> Expression | None:
        """The grouping expression for `by`; None when these rows cannot be grouped that way."""
        if by in ("hour", "day", "week"):
            return _start_of(by, self.when, self.epoch, dialect)
        return self.keys.get(by)


def how_many(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """An aggregate counting the rows that meet `condition` (0 over no rows)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def aggregate(session: Session, rows: Rows, *values: Any, by: str | None = None) -> dict[str, tuple[Any, ...]]:
    """`values` (aggregates) over `rows`: {TOTAL: row} for the whole period, else one row per
    group of `by`."""
    statement = rows.select(_group_key(session, rows, by).label(_GROUP_KEY), *values)
    if by is not None:
        # Grouped by the output name: PostgreSQL compares the SELECT and GROUP BY expressions
        # parameter by parameter, and a JSON path is a parameter.
        statement = statement.group_by(literal_column(_GROUP_KEY))
    return {NO_KEY if row[0] is None else str(row[0]): tuple(row[1:]) for row in session.execute(statement)}


def count(session: Session, rows: Rows, by: str | None = None) -> dict[str, int]:
    """How many `rows` there are: {TOTAL: n}, or per group of `by`."""
    return {key: int(values[0]) for key, values in aggregate(session, rows, func.count(), by=by).items()}


def waits(session: Session, rows: Rows, end: Any, by: str | None = None) -> dict[str, list[float]]:
    """Minutes from when each of `rows` happened to `end` (a later moment of the row, a datetime
    column), computed by the database: {TOTAL: minutes}, or per group of `by`."""
    if rows.epoch:
        raise ValueError("waits are measured between datetime columns")
    if session.get_bind().dialect.name == "postgresql":
        minutes = extract("epoch", end - rows.when) / 60.0
    else:  # SQLite keeps datetimes as ISO text, which julianday() reads (in days)
        minutes = (func.julianday(end) - func.julianday(rows.when)) * 1440.0
    grouped: dict[str, list[float]] = defaultdict(list)
    # Core rows, not ORM ones: a month of tickets is tens of thousands of them.
    for group, waited in session.connection().execute(rows.select(_group_key(session, rows, by), minutes)):
        grouped[NO_KEY if group is None else str(group)].append(waited)
    # Rounded off: julianday's doubles would put a wait of exactly 30 minutes a hair over.
    return {key: np.round(np.asarray(values, dtype=float), 5).tolist() for key, values in grouped.items()}


def _group_key(session: Session, rows: Rows, by: str | None) -> Expression:
    """The key rows are grouped by: the whole period's when `by` is None. ValueError when the
    rows cannot be grouped that way."""
    if by is None:
        return literal_column(f"'{TOTAL}'")
    key = rows.key(by, session.get_bind().dialect.name)
    if key is None:
        raise ValueError(f"these rows cannot be grouped by {by!r}")
    return key


def _start_of(unit: str, when: Expression, epoch: bool, dialect: str) -> ColumnElement[Any]:
    """The UTC hour (as YYYY-MM-DD HH:00), day, or Monday of the ISO week (as YYYY-MM-DD) `when`
    falls in."""
    # Literal SQL, not bound parameters: PostgreSQL must see the same expression in SELECT and
    # GROUP BY, and two parameters with equal values are not the same expression to it.
    if dialect == "postgresql":
        moment = func.to_timestamp(when) if epoch else when
        start = func.date_trunc(literal_column(f"'{unit}'"), func.timezone(literal_column("'UTC'"), moment))
        if unit == "hour":
            return func.to_char(start, literal_column("'YYYY-MM-DD HH24:00'"))
        return func.to_char(cast(start, Date), literal_column("'YYYY-MM-DD'"))
    # SQLite stores UTC datetimes as ISO text; 'weekday 1' moves forward to a Monday.
    modifiers: list[ColumnElement[Any]] = [literal_column("'unixepoch'")] if epoch else []
    if unit == "hour":
        return func.strftime(literal_column("'%Y-%m-%d %H:00'"), when, *modifiers)
    if unit == "week":
        modifiers += [literal_column("'-6 days'"), literal_column("'weekday 1'")]
    return func.date(when, *modifiers)
