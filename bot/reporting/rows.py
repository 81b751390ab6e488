"""What one figure aggregates over: a table's rows in a period, joined to their conversation (for
the channel), and the keys they can be grouped by (day and week portably on SQLite and
PostgreSQL); and the aggregates run over them, for the whole period or per group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, FromClause, Select, case, cast, func, literal_column, select
from sqlalchemy.orm import QueryableAttribute, Session

# The whole period, as the key of an ungrouped aggregate.
TOTAL = "total"
# Rows whose key is empty: a ticket nobody claimed, a message nobody parsed.
NO_KEY = "(none)"
_GROUP_KEY = "group_key"
Expression = ColumnElement[Any] | QueryableAttribute[Any]


@dataclass(frozen=True)
class Rows:
    """Rows of `source` meeting `conditions`; `when` is the moment each happened (epoch seconds
    when `epoch`), `keys` the other columns they can be grouped by (channel, intent, agent...)."""

    source: FromClause
    conditions: tuple[ColumnElement[bool], ...]
    when: Expression
    epoch: bool
    keys: Mapping[str, Expression]

    def where(self, *conditions: ColumnElement[bool]) -> Rows:
        """These rows, only those meeting `conditions` too."""
        return replace(self, conditions=(*self.conditions, *conditions))

    def select(self, *columns: Any) -> Select[Any]:
        return select(*columns).select_from(self.source).where(*self.conditions)

    def key(self, by: str, dialect: str) -> Expression | None:
        """The grouping expression for `by`; None when these rows cannot be grouped that way."""
        if by in ("day", "week"):
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


def spans(session: Session, rows: Rows, end: Any, by: str | None = None) -> dict[str, list[tuple[datetime, datetime]]]:
    """(when, `end`) of each of `rows` (`end` a moment of the row): {TOTAL: spans}, or per group of `by`."""
    grouped: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for group, opened, ended in session.execute(rows.select(_group_key(session, rows, by), rows.when, end)):
        grouped[NO_KEY if group is None else str(group)].append((opened, ended))
    return dict(grouped)


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
    """The UTC day, or the Monday of the ISO week, `when` falls in, as YYYY-MM-DD text."""
    # Literal SQL, not bound parameters: PostgreSQL must see the same expression in SELECT and
    # GROUP BY, and two parameters with equal values are not the same expression to it.
    if dialect == "postgresql":
        moment = func.to_timestamp(when) if epoch else when
        start = func.date_trunc(literal_column(f"'{unit}'"), func.timezone(literal_column("'UTC'"), moment))
        return func.to_char(cast(start, Date), literal_column("'YYYY-MM-DD'"))
    # SQLite stores UTC datetimes as ISO text; 'weekday 1' moves forward to a Monday.
    modifiers: list[ColumnElement[Any]] = [literal_column("'unixepoch'")] if epoch else []
    if unit == "week":
        modifiers += [literal_column("'-6 days'"), literal_column("'weekday 1'")]
    return func.date(when, *modifiers)
