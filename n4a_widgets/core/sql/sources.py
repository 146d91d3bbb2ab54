"""Where the console's tables come from: ``store.sqlite`` (ADBC or sqlite3), a legacy ``store.duckdb``.

Metadata tables are loaded lazily (only the tables and columns a query may
use) through trace-free read-only opens, as Arrow arrays that the locked engine
then sees as registered tables.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..errors import WorkspaceError
from ..readonly_sqlite import adbc_reader
from ..readonly_sqlite import adbc_uri as _adbc_uri  # noqa: F401 - re-exported by core.sql
from ..reports import Report

if TYPE_CHECKING:
    import pyarrow as pa

    from .engine import _Watchdog


@dataclass(frozen=True)
class ColumnInfo(Report):
    name: str
    type: str


@dataclass(frozen=True)
class TableInfo(Report):
    """One table of the console's schema sidebar."""

    name: str
    kind: str
    """``table``, ``view`` (metadata store) or ``arrays`` (Parquet arrays, live rows)."""
    row_count: int | None
    columns: tuple[ColumnInfo, ...]
    description: str = ""


def _affinity(decl: str) -> str:
    """SQLite's column affinity rules, reduced to the Arrow type we build."""
    d = (decl or "").upper()
    if "INT" in d:
        return "int"
    if any(k in d for k in ("CHAR", "CLOB", "TEXT")):
        return "str"
    if any(k in d for k in ("REAL", "FLOA", "DOUB")):
        return "float"
    if "BLOB" in d:
        return "bytes"
    return "any"


_DISPLAY_TYPE = {"int": "BIGINT", "str": "VARCHAR", "float": "DOUBLE", "bytes": "BLOB", "any": "VARCHAR"}


def _arrow_column(values: tuple[Any, ...] | list[Any], kind: str) -> pa.Array:
    """Build an Arrow array from SQLite values (dynamically typed: fall back gracefully)."""
    import pyarrow as pa

    target = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bytes": pa.binary()}.get(kind)
    try:
        return pa.array(values, type=target) if target is not None else pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    if kind == "int":
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            return pa.array(values, type=pa.float64())
    return pa.array([None if v is None else (v.hex() if isinstance(v, bytes) else str(v)) for v in values],
                    type=pa.string())


@dataclass
class _Table:
    name: str
    kind: str  # table / view
    columns: list[str]
    types: list[str]  # affinity (sqlite) or DuckDB type (duckdb)
    row_count: int | None
    has_rowid: bool = True


class _Source:
    """Where metadata tables come from; loads chosen columns as Arrow arrays."""

    tables: dict[str, _Table]

    def load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        raise NotImplementedError

    def display_type(self, table: _Table, index: int) -> str:
        return table.types[index]

    def column_bytes(self, name: str, columns: list[str]) -> dict[str, float]:
        """Arrow bytes each whole column would take, estimated from a sample ({} when unknown)."""
        return {}


class _NoSource(_Source):
    def __init__(self) -> None:
        self.tables = {}

    def load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        return {}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _SqliteSource(_Source):
    def __init__(self, db: Path) -> None:
        from ..readonly_sqlite import open_readonly

        self.db = db
        self.tables = {}
        with open_readonly(db) as conn:
            objects = conn.execute(
                "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
            ).fetchall()
            for name, kind in objects:
                info = conn.execute(f"PRAGMA table_info({_q(name)})").fetchall()
                count = None
                has_rowid = kind == "table"
                if kind == "table":
                    try:
                        conn.execute(f"SELECT rowid FROM {_q(name)} LIMIT 0").fetchall()
                    except Exception:  # noqa: BLE001 - WITHOUT ROWID tables
                        has_rowid = False
                self.tables[name] = _Table(
                    name, kind, [r[1] for r in info], [_affinity(r[2]) for r in info], count, has_rowid
                )

    def column_bytes(self, name: str, columns: list[str]) -> dict[str, float]:
        """Average width of 1,000 rows times the row count (``max(rowid)``: no scan)."""
        from ..readonly_sqlite import open_readonly

        table = self.tables.get(name)
        if not columns or table is None or not table.has_rowid:
            return {}
        width = ("avg(CASE typeof({c}) WHEN 'text' THEN length(CAST({c} AS BLOB)) + 4 "
                 "WHEN 'blob' THEN length({c}) + 4 ELSE 8 END)")
        sql = (f"SELECT {', '.join(width.format(c=_q(c)) for c in columns)} FROM "
               f"(SELECT {', '.join(_q(c) for c in columns)} FROM {_q(name)} LIMIT 1000)")
        try:
            with open_readonly(self.db) as conn:
                row = conn.execute(sql).fetchone()
                rows = int(conn.execute(f"SELECT max(rowid) FROM {_q(name)}").fetchone()[0] or 0)
        except Exception:  # noqa: BLE001 - an estimate only: no budget then
            return {}
        return {c: float(v or 8) * rows for c, v in zip(columns, row, strict=True)}

    def display_type(self, table: _Table, index: int) -> str:
        return _DISPLAY_TYPE[table.types[index]]

    def count_rows(self) -> None:
        """Fill ``row_count`` of every table (only the schema sidebar needs it)."""
        from ..readonly_sqlite import open_readonly

        todo = [t for t in self.tables.values() if t.kind == "table" and t.row_count is None]
        if not todo:
            return
        with open_readonly(self.db) as conn:
            for table in todo:
                table.row_count = int(conn.execute(f"SELECT count(*) FROM {_q(table.name)}").fetchall()[0][0])

    def load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        """Read the wanted columns: natively into Arrow (ADBC) where it gives the same answer, else via Python."""
        return _adbc_load(self.db, self.tables, wanted, dog) or self._python_load(wanted, dog)

    def _python_load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        """Row by row through Python's sqlite3 (≈1 µs a value): the exact, always-available path."""
        from ..readonly_sqlite import open_readonly

        out: dict[str, dict[str, pa.Array]] = {}
        with open_readonly(self.db) as conn:
            # One read transaction: every table comes from the same snapshot (matters in WAL mode).
            with contextlib.suppress(Exception):
                conn.execute("BEGIN")
            for name, cols in wanted.items():
                dog.check()
                table = self.tables[name]
                order = " ORDER BY rowid" if table.has_rowid else ""
                rows = conn.execute(f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(name)}{order}").fetchall()
                dog.check()
                values = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
                kinds = {c: table.types[table.columns.index(c)] for c in cols}
                out[name] = {c: _arrow_column(v, kinds[c]) for c, v in zip(cols, values, strict=True)}
            with contextlib.suppress(Exception):
                conn.execute("COMMIT")
        return out


#: Arrow types the ADBC SQLite driver may return for a column of each affinity that equal what
#: ``_arrow_column`` builds from the same values (the driver infers one type from all the values it reads).
_ADBC_ACCEPTED = {
    "int": ("int64", "double"),  # integers (and reals mixed in: double, as _arrow_column falls back to)
    "float": ("double", "int64"),  # int64 only when no value is a real: cast to double
    "str": ("string",),  # a blob among texts makes the column binary: not accepted
    "bytes": ("binary",),
    "any": ("int64", "double", "string", "binary"),  # string/binary re-checked with the storage classes
}
_ADBC_TARGET = {"int": "int64", "float": "double", "str": "string", "bytes": "binary"}
#: Storage classes (SQLite ``typeof``) that an ``any``-affinity column may mix and still match ``_arrow_column``.
_CLASS_CODE = "CASE typeof({col}) WHEN 'integer' THEN 1 WHEN 'real' THEN 2 WHEN 'text' THEN 4 WHEN 'blob' THEN 8 " \
              "ELSE 0 END"


def _adbc_column(array: Any, kind: str, classes: set[int] | None) -> pa.Array | None:
    """The driver's column as ``_arrow_column`` would build it, or None when they could differ."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    if array.null_count == n:  # empty or all NULL: the driver says int64, we say the affinity's type
        target = _ADBC_TARGET.get(kind)
        return pa.nulls(n, type=pa.type_for_alias(target) if target else pa.null())
    name = str(array.type)
    if name not in _ADBC_ACCEPTED[kind]:
        return None
    if kind == "float" and name == "int64":
        return array.cast(pa.float64())
    # Texts or blobs in an ``any`` column: only when no other storage class is mixed in.
    if kind == "any" and name in ("string", "binary") and (classes is None or len(classes - {0}) != 1):
        return None
    return array


def _adbc_load(
    db: Path, tables: dict[str, _Table], wanted: dict[str, list[str]], dog: _Watchdog
) -> dict[str, dict[str, pa.Array]]:
    """Read the wanted columns of ``store.sqlite`` straight into Arrow with the ADBC SQLite driver.

    ``readonly_sqlite.adbc_reader``: one read-only snapshot for every table, each read as one validated
    batch, so the driver infers each column's type from every value; a table whose
    columns could come out differently from the Python path (mixed storage classes) is left out and the
    caller reads it through Python.  Any driver error (not installed, locked, corrupt, invalid UTF-8)
    leaves the table to the Python path too, which maps errors to the right WorkspaceError.
    """
    out: dict[str, dict[str, pa.Array]] = {}
    try:
        with adbc_reader(db) as read:
            for name, cols in wanted.items():
                dog.check()
                table = tables[name]
                kinds = [table.types[table.columns.index(c)] for c in cols]
                checks = [i for i, k in enumerate(kinds) if k == "any"]
                select = [_q(c) for c in cols] + [_CLASS_CODE.format(col=_q(cols[i])) for i in checks]
                order = " ORDER BY rowid" if table.has_rowid else ""
                count = int(read(f"SELECT count(*) FROM {_q(name)}").column(0)[0].as_py())
                got = read(f"SELECT {', '.join(select)} FROM {_q(name)}{order}", rows=count)
                dog.check()
                if got.num_columns != len(select):
                    return {}
                arrays: dict[str, pa.Array] = {}
                for i, (c, kind) in enumerate(zip(cols, kinds, strict=True)):
                    classes = None
                    if kind == "any":
                        code = got.column(len(cols) + checks.index(i))
                        classes = {int(v) for v in code.unique().to_pylist() if v is not None}
                    arr = _adbc_column(got.column(i), kind, classes)
                    if arr is None:
                        # Read every table through Python then: all of them from one snapshot.
                        return {}
                    arrays[c] = arr
                out[name] = arrays
    except WorkspaceError:
        raise  # a timeout or cancel from dog.check()
    except Exception:  # noqa: BLE001 - any driver problem: the Python path reads (and reports) it
        return {}
    return out


class _DuckdbSource(_Source):
    """A legacy ``store.duckdb`` (nirs4all 0.7-0.8.3), opened ``read_only=True`` for each load."""

    def __init__(self, db: Path) -> None:
        from ..readonly_duckdb import open_duckdb_readonly

        self.db = db
        self.tables = {}
        with open_duckdb_readonly(db) as conn:
            objects = conn.execute(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = 'main' ORDER BY table_type, table_name"
            ).fetchall()
            for name, kind in objects:
                cols = conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                    [name],
                ).fetchall()
                is_view = "VIEW" in str(kind).upper()
                count = None if is_view else int(conn.execute(f"SELECT count(*) FROM {_q(name)}").fetchall()[0][0])
                self.tables[name] = _Table(
                    name, "view" if is_view else "table", [c[0] for c in cols], [str(c[1]) for c in cols], count
                )

    def load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        from ..readonly_duckdb import open_duckdb_readonly

        out: dict[str, dict[str, pa.Array]] = {}
        with open_duckdb_readonly(self.db) as conn:
            for name, cols in wanted.items():
                dog.check()
                # Load every wanted column of a table at once so rows line up.
                table = conn.sql(f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(name)}").to_arrow_table()
                out[name] = {c: table.column(i).combine_chunks() for i, c in enumerate(cols)}
        return out


def _signature(root: Path) -> tuple[Any, ...]:
    """Changes when any file the console reads changes (then caches are dropped)."""
    paths = [root / layout.STORE_SQLITE, *layout.sqlite_sidecars(root)[:1], root / layout.STORE_DUCKDB,
             root / layout.ARRAYS_DIR / layout.TOMBSTONES_FILE]
    arrays = root / layout.ARRAYS_DIR
    if arrays.is_dir():
        paths += sorted(arrays.glob("*.parquet"))
    sig: list[Any] = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        sig.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(sig)
