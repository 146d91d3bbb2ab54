"""``query PATH "SQL" [--limit N] [--timeout S] [--json]``: read-only SQL from the shell."""

from __future__ import annotations

import argparse
import json

from ..core.errors import WorkspaceError
from ..core.workspace import Workspace
from .output import emit

MAX_CELL = 40


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "query",
        help="run one read-only SQL query over the metadata tables and 'arrays'",
        description="Run one read-only SELECT over the workspace's metadata tables (predictions, runs, pipelines, "
        "chains, ...) and 'arrays' (live prediction arrays; join on prediction_id). Nothing can be written.",
    )
    p.add_argument("path")
    p.add_argument("sql", help='the query, e.g. "SELECT model_name, avg(val_score) FROM predictions GROUP BY 1"')
    p.add_argument("--limit", type=int, default=1000, help="row cap (default 1000)")
    p.add_argument("--timeout", type=float, default=30.0, help="time limit in seconds (default 30)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (columns, rows, ...)")
    p.set_defaults(handler=_query)


def _cell(value: object) -> str:
    text = "NULL" if value is None else (json.dumps(value) if isinstance(value, (list, dict)) else str(value))
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def format_table(columns: list[str], rows: list[list[object]]) -> str:
    """A plain aligned text table (cells cut at 40 characters)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _query(args: argparse.Namespace) -> int:
    try:
        result = Workspace(args.path).query(args.sql, limit=args.limit, timeout_s=args.timeout)
    except WorkspaceError:
        raise  # printed as "error: ..." and "hint: ..." by the CLI, exit 1
    except Exception:  # noqa: BLE001 - never a traceback or a machine path on the terminal
        raise WorkspaceError(
            "The query failed unexpectedly; nothing was changed.",
            "Run it again; if it keeps failing, report the query (not this machine's paths).",
        ) from None
    more = f" (truncated at {result.limit}; more rows exist)" if result.truncated else ""
    summary = (
        f"{format_table(result.columns, result.rows)}\n"
        f"{result.row_count} rows{more} in {result.duration_seconds:.3f} s"
    )
    emit(result, args.json, summary)
    return 0
