"""A query's kept rows and the page the console shows (``QueryResult``, ``QueryCursor``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..reports import Report
from .values import _check_int

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


class QueryCursor:
    """The kept rows of one query (at most ``limit``), served page by page.

    The rows stay in the session's worker process; each page is converted
    there, under the query's time limit, the worker's memory cap and a byte cap
    (``page_bytes``), and only that page reaches this process.  A page whose
    rows do not all fit the byte cap comes back shorter (``result().truncated``
    with reason ``"bytes"``).  After the engine was restarted the rows are gone:
    paging then asks to run the query again.
    """

    def __init__(self, session: Any, meta: dict[str, Any], *, sql: str, limit: int, page_size: int,
                 timeout_s: float, page_bytes: int, generation: int) -> None:
        self.sql = sql
        self.columns: list[str] = [str(c) for c in meta["columns"]]
        self.types: list[str] = [str(t) for t in meta["types"]]
        self._rows = int(meta["row_count"])
        self.truncated_reason: str = str(meta["truncated_reason"])
        self.truncated = bool(self.truncated_reason)
        self.duration_seconds = float(meta["duration_seconds"])
        self.tables: list[str] = list(meta["tables"])
        self.limit = limit
        self.page_size = page_size
        self.timeout_s = timeout_s
        self.page_bytes = page_bytes
        self._session = session
        self._result_id = int(meta["result"])
        self._generation = generation

    @property
    def row_count(self) -> int:
        return self._rows

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.row_count / self.page_size))

    def _check_page(self, index: int) -> int:
        index = _check_int("page", index, minimum=0)
        if index >= self.page_count:
            raise InvalidArgumentError(f"Page {index} does not exist (the result has {self.page_count} pages).")
        return index

    def _fetch(self, index: int, fmt: str) -> tuple[bytes, int, int]:
        index = self._check_page(index)
        offset = index * self.page_size
        length = max(0, min(self.page_size, self.row_count - offset))
        body, sent = self._session._page(self, offset=offset, length=length, fmt=fmt)
        return body, sent, length

    def page(self, index: int = 0) -> pa.Table:
        """Rows of page ``index`` as an Arrow table (the kept values, as the engine returned them)."""
        import pyarrow as pa

        body, _sent, _length = self._fetch(index, "arrow")
        return pa.ipc.open_stream(body).read_all()

    def page_ipc(self, index: int = 0) -> bytes:
        """Page ``index`` as Arrow IPC stream bytes, with types a JS Arrow reader can show."""
        return self._fetch(index, "display")[0]

    def page_rows(self, index: int = 0) -> list[list[Any]]:
        """Page ``index`` as lists of plain JSON values."""
        return self._page_rows(index)[0]

    def _page_rows(self, index: int) -> tuple[list[list[Any]], bool]:
        import json

        body, sent, length = self._fetch(index, "rows")
        rows = json.loads(body)
        return rows, sent < length

    def result(self, page: int = 0) -> QueryResult:
        """The ``QueryResult`` for page ``page`` (rows as plain JSON values)."""
        page = self._check_page(page)
        rows, cut = self._page_rows(page)
        truncated, reason, count = self.truncated, self.truncated_reason, self.row_count
        if cut:  # the page's rows did not all fit the byte cap
            truncated, reason = True, "bytes"
            if self.page_count == 1:
                count = len(rows)
        return QueryResult(
            sql=self.sql, columns=list(self.columns), types=list(self.types), rows=rows,
            row_count=count, truncated=truncated, duration_seconds=round(self.duration_seconds, 4),
            limit=self.limit, page=page, page_size=self.page_size, page_count=self.page_count,
            offset=page * self.page_size, tables=list(self.tables), truncated_reason=reason,
        )

    def summary(self, page: int = 0) -> dict[str, Any]:
        """``result(page).to_dict(include_rows=False)`` without converting any row (the console's report)."""
        page = self._check_page(page)
        return QueryResult(
            sql=self.sql, columns=list(self.columns), types=list(self.types), rows=[], row_count=self.row_count,
            truncated=self.truncated, duration_seconds=round(self.duration_seconds, 4), limit=self.limit,
            page=page, page_size=self.page_size, page_count=self.page_count, offset=page * self.page_size,
            tables=list(self.tables), truncated_reason=self.truncated_reason,
        ).to_dict(include_rows=False)

    def to_arrow(self) -> pa.Table:
        """Every kept row as one Arrow table (within the page byte cap)."""
        import pyarrow as pa

        body, _sent = self._session._page(self, offset=0, length=self.row_count, fmt="arrow")
        return pa.ipc.open_stream(body).read_all()
