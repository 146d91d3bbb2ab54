"""The statement check: exactly one SELECT whose syntax tree holds only SELECT query nodes.

A second layer behind the locked engine: DuckDB parses the statement (it
accepts ``WITH x AS (DELETE ...)``, which we refuse), and the tree tells which
tables and columns the query may refer to, so only those are loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidArgumentError, QueryRejectedError
from .engine import _map_engine_error

_READ_ONLY = "This console is read-only: "
_ALLOWED_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
#: Longest statement accepted (characters).  Real console queries are a few hundred; a statement
#: of tens of thousands of ``UNION ALL`` branches or ``IN`` elements is refused before it is parsed.
MAX_SQL_CHARS = 100_000
#: Schemas whose tables describe the catalog: a query on them sees every table, so all are loaded.
_CATALOG_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
#: Table functions a query may call: pure generators and read-only catalog listings.  Everything
#: else (file readers, ``query()``'s dynamic SQL, functions that change engine state such as
#: ``checkpoint``, ``enable_logging`` or ``register_external_resource``) is refused: an allowlist,
#: so a function added by a later DuckDB is refused until someone looks at it.
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree",
    "duckdb_columns", "duckdb_constraints", "duckdb_databases", "duckdb_dependencies", "duckdb_functions",
    "duckdb_indexes", "duckdb_keywords", "duckdb_memory", "duckdb_optimizers", "duckdb_schemas",
    "duckdb_secrets", "duckdb_sequences", "duckdb_settings", "duckdb_tables", "duckdb_temporary_files",
    "duckdb_types", "duckdb_variables", "duckdb_views",
    "pragma_table_info", "pragma_show", "pragma_database_list", "pragma_database_size", "pragma_version",
    "pragma_platform", "pragma_storage_info", "pragma_metadata_info", "pragma_collations", "test_all_types",
})
#: Scalar functions with a side effect on the engine (a log line, a sequence): refused.
_STATEFUL_SCALARS = frozenset({"write_log", "nextval", "setval", "currval"})
_WORD = re.compile(r"[a-z_][a-z0-9_$]*")


@dataclass
class _Analysis:
    words: set[str]
    all_columns: bool
    catalog: bool
    bare: dict[int, str] = field(default_factory=dict)
    """Output position -> column name, for top-level select items that are a plain column reference."""
    elsewhere: set[str] = field(default_factory=set)
    """Column names referenced anywhere else (filters, joins, sorts, functions, subqueries)."""
    flat_top: bool = False
    """The statement is one SELECT (no set operation, DISTINCT or ``*`` at the top): positions are columns."""
    ordered: bool = False
    """The top SELECT sorts (ORDER BY): every row is seen before the first is kept."""
    qualified: dict[str, set[str]] = field(default_factory=dict)
    """Table (by name, aliases resolved) -> column names referenced as ``alias.column``."""
    unqualified: set[str] = field(default_factory=set)
    """Column names referenced without a known table qualifier (could be any table's)."""

    def columns_of(self, table: str, names: list[str]) -> set[str]:
        """Columns of ``table`` the query may use: unqualified, qualified by one of its aliases, or named
        somewhere that is not a column reference (``USING (...)``); never one only written ``other.col``."""
        if self.all_columns or self.catalog:
            return set(names)
        ref_names = self.unqualified | {c for cols in self.qualified.values() for c in cols}
        mine = self.qualified.get(table.lower(), set())
        loose = self.words - ref_names
        return {c for c in names if (low := c.lower()) in self.unqualified or low in mine or low in loose}


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

    check_text(sql)
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
    try:
        tree = json.loads(row[0]) if row else {"error": True}
    except RecursionError:
        raise QueryRejectedError(
            "The query is nested too deeply to check.", "Write it with fewer nested expressions or subqueries."
        ) from None
    if tree.get("error"):
        message = str(tree.get("error_message") or "unsupported statement")
        if "Only SELECT" in message:
            raise QueryRejectedError(_READ_ONLY + "only SELECT queries run.")
        raise InvalidArgumentError(f"SQL error: {message}", "Check the query's syntax.")
    aliases: set[str] = set()
    refs: list[list[str]] = []
    all_columns = False
    catalog = False
    bare, top_ids, flat_top = _top_select(tree)
    elsewhere: set[str] = set()
    alias_of: dict[str, str] = {}
    for node in _walk(tree):
        node_type = node.get("type")
        if isinstance(node_type, str) and node_type.endswith("_NODE") and node_type not in _ALLOWED_QUERY_NODES:
            raise QueryRejectedError(
                _READ_ONLY + f"data-changing statements are not allowed, even inside a query ({node_type}).",
            )
        if node_type == "BASE_TABLE":
            aliases.add(str(node.get("alias") or "").lower())
            aliases.add(str(node.get("table_name") or "").lower())
            table_name = str(node.get("table_name") or "").lower()
            alias_of[table_name] = table_name
            if node.get("alias"):
                alias_of[str(node["alias"]).lower()] = table_name
            catalog = catalog or str(node.get("schema_name") or "").lower() in _CATALOG_SCHEMAS
        elif node_type == "TABLE_FUNCTION":
            name = _function_name(node.get("function"))
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise QueryRejectedError(
                    _READ_ONLY + f"the table function {name or '(unnamed)'}() is not available here; "
                    "it reads files, runs dynamic SQL or changes the engine.",
                    "Query the workspace tables (predictions, runs, ..., arrays) or range()/unnest().",
                )
            catalog = catalog or name.startswith(("duckdb_", "pragma_"))
        elif node_type in ("STAR", "POSITIONAL_REFERENCE", "SHOW_REF") or node.get("ref_type") == "NATURAL":
            all_columns = True
            catalog = catalog or node_type == "SHOW_REF"
        elif node_type == "COLUMN_REF":
            refs.append([str(n).lower() for n in node.get("column_names") or []])
            if id(node) not in top_ids and refs[-1]:
                elsewhere.add(refs[-1][-1])
        if node.get("class") == "FUNCTION" and node_type == "FUNCTION":
            name = _function_name(node)
            if name in _STATEFUL_SCALARS:
                raise QueryRejectedError(_READ_ONLY + f"{name}() changes the engine's state and is not available.")
    aliases.discard("")
    if any(len(r) == 1 and r[0] in aliases for r in refs):
        all_columns = True  # a table used as a value (``SELECT p FROM predictions p``) needs every column
    # Names from the parsed tree, never from the text: a word in a comment loads nothing.
    words: set[str] = set()
    for text in _strings(tree):
        low = text.lower()
        words.add(low)
        words.update(_WORD.findall(low))
    qualified: dict[str, set[str]] = {}
    unqualified: set[str] = set()
    for ref in refs:
        if len(ref) >= 2 and ref[0] in alias_of:
            qualified.setdefault(alias_of[ref[0]], set()).add(ref[1])
        else:
            unqualified.update(ref)  # ``col`` or ``col.field`` (or an alias we cannot see): any table's
    try:
        top: Any = tree["statements"][0]["node"]  # type: ignore[index]
        ordered = any(isinstance(m, dict) and m.get("type") == "ORDER_MODIFIER" and m.get("orders")
                      for m in top.get("modifiers") or [])
    except (KeyError, IndexError, TypeError, AttributeError):
        ordered = False
    return _Analysis(words=words, all_columns=all_columns or catalog, catalog=catalog, bare=bare,
                     elsewhere=elsewhere, flat_top=flat_top, ordered=ordered, qualified=qualified,
                     unqualified=unqualified)


def _top_select(tree: Any) -> tuple[dict[int, str], set[int], bool]:
    """Plain column references among the top-level select items (their position and name)."""
    try:
        node = tree["statements"][0]["node"]
    except (KeyError, IndexError, TypeError):
        return {}, set(), False
    if not isinstance(node, dict) or node.get("type") != "SELECT_NODE":
        return {}, set(), False
    modifiers = node.get("modifiers") or []
    if any(isinstance(m, dict) and m.get("type") == "DISTINCT_MODIFIER" for m in modifiers):
        return {}, set(), False
    items = node.get("select_list") or []
    bare: dict[int, str] = {}
    ids: set[int] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or item.get("type") in ("STAR", "COLUMNS"):
            return {}, set(), False
        if item.get("type") == "COLUMN_REF" and item.get("column_names"):
            bare[i] = str(item["column_names"][-1]).lower()
            ids.add(id(item))
    return bare, ids, True


def check_text(sql: object) -> None:
    """The checks that need no engine: a non-empty string of at most ``MAX_SQL_CHARS`` characters."""
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidArgumentError("The query is empty.", "Type a SELECT query, for example: SELECT * FROM runs")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRejectedError(
            f"The query is {len(sql):,} characters long; the console accepts at most {MAX_SQL_CHARS:,}.",
            "Shorten it: filter with a join or a WHERE on a table instead of listing thousands of values.",
        )


def _function_name(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    return str(node.get("function_name") or "").lower()


def _strings(tree: Any) -> Iterator[str]:
    """Every name in the tree: identifiers, not string constants (a literal names no table)."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            if item.get("class") == "CONSTANT":
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
