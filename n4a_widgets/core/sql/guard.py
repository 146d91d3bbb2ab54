"""The statement check: exactly one SELECT whose syntax tree holds only SELECT query nodes.

A second layer behind the locked engine: DuckDB parses the statement (it
accepts ``WITH x AS (DELETE ...)``, which we refuse), and the tree tells which
tables and columns the query may refer to, so only those are loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError, QueryRejectedError
from .engine import _map_engine_error

_READ_ONLY = "This console is read-only: "
_ALLOWED_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
#: Words that make a query look at the catalog itself: then every table is loaded in full.
_CATALOG_WORDS = frozenset({
    "describe", "summarize", "show", "information_schema", "pg_catalog", "duckdb_columns", "duckdb_tables",
    "duckdb_views", "duckdb_constraints", "duckdb_indexes", "pragma_table_info", "pragma_show", "table_info",
    "query", "query_table",
})
_WORD = re.compile(r"[a-z_][a-z0-9_$]*")


@dataclass
class _Analysis:
    words: set[str]
    all_columns: bool
    catalog: bool


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_statement(conn: Any, sql: str) -> _Analysis:
    """Refuse anything but one SELECT; return what the query may refer to."""
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise InvalidArgumentError("The query is empty.", "Type a SELECT query, for example: SELECT * FROM runs")
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise _map_engine_error(exc, None) from exc
    if not statements:
        raise InvalidArgumentError("The query is empty (only comments?).", "Type a SELECT query.")
    if len(statements) > 1:
        raise QueryRejectedError(
            _READ_ONLY + f"send one statement at a time (found {len(statements)} separated by ';').",
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = str(getattr(kind, "name", kind)).replace("_", " ")
        if name == "MULTI":
            raise QueryRejectedError(
                _READ_ONLY + "this statement expands into several statements (a PIVOT without an IN list?).",
                "Write PIVOT ... ON column IN (value, ...) inside a SELECT, or use GROUP BY.",
            )
        raise QueryRejectedError(_READ_ONLY + f"{name} statements are not allowed; only SELECT queries run.")
    try:
        found = conn.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()
        row = found[0] if found else None
    except duckdb.Error as exc:
        raise _map_engine_error(exc, None) from exc
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        message = str(tree.get("error_message") or "unsupported statement")
        if "Only SELECT" in message:
            raise QueryRejectedError(_READ_ONLY + "only SELECT queries run.")
        raise InvalidArgumentError(f"SQL error: {message}", "Check the query's syntax.")
    aliases: set[str] = set()
    refs: list[list[str]] = []
    all_columns = False
    for node in _walk(tree):
        node_type = node.get("type")
        if isinstance(node_type, str) and node_type.endswith("_NODE") and node_type not in _ALLOWED_QUERY_NODES:
            raise QueryRejectedError(
                _READ_ONLY + f"data-changing statements are not allowed, even inside a query ({node_type}).",
            )
        if node_type == "BASE_TABLE":
            aliases.add(str(node.get("alias") or "").lower())
            aliases.add(str(node.get("table_name") or "").lower())
        elif node_type in ("STAR", "POSITIONAL_REFERENCE", "SHOW_REF") or node.get("ref_type") == "NATURAL":
            all_columns = True
        elif node_type == "COLUMN_REF":
            refs.append([str(n).lower() for n in node.get("column_names") or []])
    aliases.discard("")
    if any(len(r) == 1 and r[0] in aliases for r in refs):
        all_columns = True  # a table used as a value (``SELECT p FROM predictions p``) needs every column
    words = set(_WORD.findall(sql.lower()))
    return _Analysis(words=words, all_columns=all_columns, catalog=bool(words & _CATALOG_WORDS))
