"""A query's kept rows and the page the console shows (``QueryResult``, ``QueryCursor``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..reports import Report
from .values import _check_int, arrow_ipc_bytes, display_safe, table_rows

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class QueryResult(Report):
    """One page of a query's result (``rows``) and what the whole result holds.

    ``rows`` is a list of lists of plain JSON values; ``row_count`` is the
    number of rows the result holds (at most ``limit``); ``truncated`` says the
    query produced more rows than were kept.  With the default page size
    (``limit``) ``rows`` is the whole kept result.
    """

    sql: str
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    duration_seconds: float
    limit: int
    page: int = 0
    page_size: int = 0
    page_count: int = 1
    offset: int = 0
    tables: list[str] = dataclasses.field(default_factory=list)
    truncated_reason: str = ""
    """``""``, ``"limit"`` (row cap) or ``"bytes"`` (size cap on kept rows)."""

    def to_dict(self, include_rows: bool = True) -> dict[str, Any]:
        data = super().to_dict()
        if not include_rows:
            data.pop("rows")
        return data


@dataclass
class QueryCursor:
    """The kept rows of one query (at most ``limit``), served page by page."""

    sql: str
    columns: list[str]
    types: list[str]
    table: pa.Table
    truncated: bool
    truncated_reason: str
    duration_seconds: float
    limit: int
    page_size: int
    tables: list[str]

    @property
    def row_count(self) -> int:
        return int(self.table.num_rows)

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.row_count / self.page_size))

    def _check_page(self, index: int) -> int:
        index = _check_int("page", index, minimum=0)
        if index >= self.page_count:
            raise InvalidArgumentError(f"Page {index} does not exist (the result has {self.page_count} pages).")
        return index

    def page(self, index: int = 0) -> pa.Table:
        """Rows of page ``index`` as an Arrow table."""
        index = self._check_page(index)
        return self.table.slice(index * self.page_size, self.page_size)

    def page_ipc(self, index: int = 0) -> bytes:
        """Page ``index`` as Arrow IPC stream bytes, with types a JS Arrow reader can show."""
        return arrow_ipc_bytes(display_safe(self.page(index)))

    def page_rows(self, index: int = 0) -> list[list[Any]]:
        return table_rows(self.page(index))

    def result(self, page: int = 0) -> QueryResult:
        """The ``QueryResult`` for page ``page`` (rows as plain JSON values)."""
        page = self._check_page(page)
        return QueryResult(
            sql=self.sql, columns=list(self.columns), types=list(self.types), rows=self.page_rows(page),
            row_count=self.row_count, truncated=self.truncated, duration_seconds=round(self.duration_seconds, 4),
            limit=self.limit, page=page, page_size=self.page_size, page_count=self.page_count,
            offset=page * self.page_size, tables=list(self.tables), truncated_reason=self.truncated_reason,
        )

    def to_arrow(self) -> pa.Table:
        """Every kept row as one Arrow table."""
        return self.table
