"""Cell values for JSON and for the browser's Arrow reader."""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import json
import math
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    import pyarrow as pa

#: nirs4all's Parquet schema for array files (``ArrayStore._PARQUET_SCHEMA``, checked by a contract
#: test); used for an empty ``arrays`` table when a workspace has no array file yet.
_ARRAY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("prediction_id", "utf8"), ("dataset_name", "utf8"), ("model_name", "utf8"), ("fold_id", "utf8"),
    ("partition", "utf8"), ("metric", "utf8"), ("val_score", "float64"), ("task_type", "utf8"),
    ("y_true", "list_f64"), ("y_true_shape", "list_i32"), ("y_pred", "list_f64"), ("y_pred_shape", "list_i32"),
    ("y_proba", "list_f64"), ("y_proba_shape", "list_i32"), ("X", "list_f64"), ("X_shape", "list_i32"),
    ("spectra", "list_f64"), ("spectra_shape", "list_i32"), ("sample_indices", "list_i32"),
    ("weights", "list_f64"), ("sample_metadata", "utf8"), ("result_metadata", "utf8"),
)



def plain_value(value: Any) -> Any:
    """A plain JSON value for one cell (NaN/inf become null; bytes become hex)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    return str(value)


def column_values(col: Any) -> list[Any]:
    """Python values of one Arrow column; values Python cannot hold (infinite dates) become text."""
    try:
        return list(col.to_pylist())
    except (ValueError, OverflowError, TypeError, ArithmeticError):
        pass
    import pyarrow as pa
    import pyarrow.compute as pc

    with contextlib.suppress(pa.ArrowException, ValueError, OverflowError, TypeError):
        return list(pc.cast(col, pa.string()).to_pylist())
    out: list[Any] = []
    for v in col:
        try:
            out.append(v.as_py())
        except (ValueError, OverflowError, TypeError, ArithmeticError):
            try:
                out.append(str(v))
            except (ValueError, OverflowError, TypeError, ArithmeticError):
                out.append("<value out of range>")
    return out


def table_rows(table: pa.Table) -> list[list[Any]]:
    """Rows of ``table`` as lists of plain JSON values."""
    columns = []
    for col in table.columns:
        fast = _json_native(col)
        columns.append(fast if fast is not None else [plain_value(v) for v in column_values(col)])
    return [list(r) for r in zip(*columns, strict=True)] if columns else [[] for _ in range(table.num_rows)]


def _json_native(col: Any) -> list[Any] | None:
    """Values of a column whose Python values are already plain JSON (numbers, text, lists of them).

    Floats have NaN and infinities replaced by null in Arrow first; this path
    skips the per-value ``plain_value`` walk, which dominates for array columns.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    def native(t: Any) -> bool:
        return bool(pt.is_boolean(t) or pt.is_integer(t) or pt.is_string(t) or pt.is_large_string(t)
                    or pt.is_floating(t) or pt.is_null(t))

    def clean(arr: Any) -> Any:
        if pt.is_floating(arr.type):
            return pc.if_else(pc.is_finite(arr), arr, pa.scalar(None, arr.type))
        if pt.is_list(arr.type) or pt.is_large_list(arr.type):
            offsets = arr.offsets  # of the slice, when ``arr`` is one
            start, stop = offsets[0].as_py(), offsets[-1].as_py()
            values = clean(arr.values.slice(start, stop - start))
            if values is None:
                return None
            cls = pa.LargeListArray if pt.is_large_list(arr.type) else pa.ListArray
            mask = arr.is_null() if arr.null_count else None
            return cls.from_arrays(pc.subtract(offsets, offsets[0]), values, mask=mask)
        return arr if native(arr.type) else None

    t = col.type
    if not (native(t) or ((pt.is_list(t) or pt.is_large_list(t)) and native(t.value_type))):
        return None
    out: list[Any] = []
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    for chunk in chunks:
        cleaned = clean(chunk)
        if cleaned is None:
            return None
        out.extend(cleaned.to_pylist())
    return out


def _is_js_safe(t: Any) -> bool:
    import pyarrow.types as pt

    if pt.is_boolean(t) or pt.is_integer(t) or pt.is_floating(t) or pt.is_string(t) or pt.is_null(t):
        return True
    if pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t):
        v = t.value_type
        return bool(pt.is_boolean(v) or pt.is_integer(v) or pt.is_floating(v) or pt.is_string(v))
    return False


def display_safe(table: pa.Table) -> pa.Table:
    """Columns the browser's Arrow reader shows well; others become text (JSON for nested values)."""
    import pyarrow as pa

    cols = []
    fields = []
    for field, col in zip(table.schema, table.columns, strict=True):
        if _is_js_safe(field.type):
            cols.append(col)
            fields.append(field.remove_metadata())
            continue
        values = column_values(col)
        text = [
            None if v is None else (json.dumps(plain_value(v)) if isinstance(v, (dict, list, tuple)) else
                                    str(plain_value(v)))
            for v in values
        ]
        cols.append(pa.array(text, type=pa.string()))
        fields.append(pa.field(field.name, pa.string()))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


#: Rows converted per step when a page is converted under a byte cap.
_CHUNK_ROWS = 16


def capped_rows_json(table: pa.Table, max_bytes: int, check: Any = None) -> tuple[bytes, int]:
    """The rows of ``table`` as one JSON array, stopping before it passes ``max_bytes``.

    Returns the JSON bytes and how many rows they hold.  Rows are converted a few
    at a time, each step sized from its Arrow bytes first, so a page of huge lists
    never becomes gigabytes of Python objects.  ``check()`` runs between steps.
    """
    parts: list[bytes] = []
    size = 2
    done = 0
    while done < table.num_rows:
        if check is not None:
            check()
        n = min(_CHUNK_ROWS, table.num_rows - done)
        while n > 1 and table.slice(done, n).nbytes * 3 > max_bytes - size:
            n //= 2
        chunk = table.slice(done, n)
        if chunk.nbytes > max_bytes - size:  # one row alone: its JSON is larger than its Arrow bytes
            break
        text = json.dumps(table_rows(chunk), allow_nan=False, separators=(",", ":"))[1:-1].encode()
        if size + len(text) + 1 > max_bytes:
            break
        parts.append(text)
        size += len(text) + 1
        done += n
    return b"[" + b",".join(p for p in parts if p) + b"]", done


def capped_display_ipc(table: pa.Table, max_bytes: int, check: Any = None) -> tuple[bytes, int]:
    """``display_safe`` of the leading rows of ``table`` that fit ``max_bytes``, as IPC bytes."""
    import pyarrow as pa

    pieces: list[pa.Table] = []
    size = 0
    done = 0
    while done < table.num_rows:
        if check is not None:
            check()
        n = min(_CHUNK_ROWS, table.num_rows - done)
        while n > 1 and table.slice(done, n).nbytes * 2 > max_bytes - size:
            n //= 2
        chunk = display_safe(table.slice(done, n))
        if size + chunk.nbytes > max_bytes:
            break
        pieces.append(chunk)
        size += chunk.nbytes
        done += n
    out = pa.concat_tables(pieces) if pieces else display_safe(table.slice(0, 0))
    return arrow_ipc_bytes(out), done


def arrow_ipc_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _duck_type_name(t: Any) -> str:
    import pyarrow.types as pt

    if pt.is_string(t) or pt.is_large_string(t):
        return "VARCHAR"
    if pt.is_float64(t):
        return "DOUBLE"
    if pt.is_int32(t):
        return "INTEGER"
    if pt.is_int64(t):
        return "BIGINT"
    if pt.is_list(t) or pt.is_large_list(t):
        return _duck_type_name(t.value_type) + "[]"
    return str(t).upper()


def _empty_array_schema() -> pa.Schema:
    import pyarrow as pa

    kinds = {"utf8": pa.string(), "float64": pa.float64(), "list_f64": pa.list_(pa.float64()),
             "list_i32": pa.list_(pa.int32())}
    return pa.schema([(name, kinds[kind]) for name, kind in _ARRAY_COLUMNS])


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, not {value!r}.")
    return int(value)
