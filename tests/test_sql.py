"""Read-only SQL (core.sql): hostile corpus, cross-checks with nirs4all, paging, limits, export, legacy stores."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from n4a_widgets.core.errors import (
    InvalidArgumentError,
    OperationCancelledError,
    QueryRejectedError,
    QueryTimeoutError,
    WorkspaceError,
)
from n4a_widgets.core.sql import SqlSession, export_query, locked_connection, run_query
from n4a_widgets.core.workspace import Workspace

from helpers import tree_hash

SECRET = "TOPSECRET-n4a-7f3a"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, demo_master: Path) -> dict[str, Path]:
    """A private demo workspace, a secret file and an 'outside' folder, all in one temp dir."""
    base = tmp_path_factory.mktemp("sql_sandbox")
    ws = base / "ws"
    shutil.copytree(demo_master, ws)
    (base / "outside").mkdir()
    secret = base / "secret.txt"
    secret.write_text(f"{SECRET}\n")
    (base / "cwd").mkdir()
    return {"base": base, "ws": ws, "outside": base / "outside", "secret": secret, "cwd": base / "cwd"}


@pytest.fixture(scope="module")
def session(sandbox: dict[str, Path]) -> SqlSession:
    s = SqlSession(sandbox["ws"])
    yield s
    s.close()


def _listing(*dirs: Path) -> dict[str, list[str]]:
    return {str(d): sorted(os.listdir(d)) for d in dirs}


# Every statement here must be refused (QueryRejectedError) or fail harmlessly (a WorkspaceError).
REJECTED = [
    "CREATE TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW predictions AS SELECT 1 AS x",
    "CREATE MACRO m(x) AS x",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "DROP TABLE predictions",
    "DELETE FROM predictions",
    "UPDATE predictions SET val_score = 0",
    "INSERT INTO runs SELECT * FROM runs",
    "ALTER TABLE runs ADD COLUMN x INTEGER",
    "TRUNCATE predictions",
    "WITH d AS (DELETE FROM predictions RETURNING *) SELECT * FROM d",
    "WITH u AS (UPDATE runs SET name = 'x' RETURNING *) SELECT count(*) FROM u",
    "WITH i AS (INSERT INTO runs SELECT * FROM runs RETURNING *) SELECT 1",
    "SELECT 1; DELETE FROM predictions",
    "SELECT 1;DROP TABLE runs;--",
    "SELECT 1; SELECT 2",
    "/* SELECT */ DELETE FROM predictions",
    "-- SELECT\nDROP TABLE runs",
    "COPY predictions TO '{outside}/p.csv'",
    "COPY (SELECT * FROM arrays) TO '{outside}/a.parquet' (FORMAT parquet)",
    "COPY predictions TO ':memory:'",
    "COPY predictions TO ':memory:.wal'",
    "COPY predictions TO '{ws}/arrays/extra.parquet'",
    "COPY runs FROM '{secret}'",
    "EXPORT DATABASE '{outside}/exp'",
    "IMPORT DATABASE '{outside}'",
    "ATTACH '{ws}/store.sqlite' AS s (TYPE sqlite)",
    "ATTACH '{outside}/new.duckdb' AS n",
    "ATTACH ':memory:' AS m",
    "DETACH memory",
    "USE system",
    "INSTALL sqlite",
    "FORCE INSTALL httpfs",
    "INSTALL httpfs FROM community",
    "LOAD parquet",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET lock_configuration = false",
    "SET GLOBAL allowed_directories = ['/']",
    "SET memory_limit = '100GB'",
    "PRAGMA threads = 8",
    "PRAGMA enable_profiling",
    "CALL enable_logging()",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    "EXPLAIN ANALYZE SELECT 1",
    "PIVOT predictions ON model_name USING count(*)",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv_auto('{secret}', header = false)",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM read_json('{secret}')",
    "SELECT * FROM sniff_csv('{secret}')",
    "SELECT * FROM glob('{base}/*')",
    "SELECT * FROM glob('*')",
    "SELECT * FROM read_text('{ws}/../secret.txt')",
    "SELECT * FROM read_text('../../../../../../etc/passwd')",
    "SELECT * FROM read_text('~/.ssh/id_rsa')",
    "SELECT * FROM read_text('/proc/self/environ')",
    "SELECT * FROM read_parquet('{ws}/arrays/*.parquet')",
    "SELECT * FROM parquet_metadata('{ws}/arrays/tablets.parquet')",
    "SELECT * FROM query('SELECT * FROM read_text(''{secret}'')')",
    "SELECT * FROM duckdb_extensions()",
]

# Errors, not refusals: still must change nothing and reveal nothing.
FAILING = [
    "SELECT * FROM '{secret}'",
    "SELECT * FROM self",
    "SELECT * FROM sql",
    "SELECT getenv('HOME')",
    "SELEC 1",
]

HARMLESS = [
    ("SELECT 1 /* ; DELETE FROM predictions */", [[1]]),
    ("SELECT ';DELETE FROM predictions;' AS s", [[";DELETE FROM predictions;"]]),
    ("SELECT $$; DROP TABLE runs; $$ AS s", [["; DROP TABLE runs; "]]),
    ("-- DELETE FROM predictions\nSELECT 2", [[2]]),
]

RUNAWAY = [
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    "SELECT count(*) FROM predictions a, predictions b, predictions c, predictions d, predictions e, predictions f",
    "SELECT list(range) FROM range(4000000000)",
    "SELECT * FROM arrays a, arrays b, arrays c, arrays d ORDER BY random()",
    "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b",
]


def _fmt(sql: str, sandbox: dict[str, Path]) -> str:
    return sql.format(**{k: str(v) for k, v in sandbox.items()})


def _assert_nothing_changed(sandbox: dict[str, Path], before_hash: dict[str, str], before_dirs: dict[str, list[str]]):
    assert tree_hash(sandbox["ws"]) == before_hash
    assert _listing(sandbox["base"], sandbox["outside"], sandbox["cwd"]) == before_dirs
    assert not Path(":memory:").exists() and not Path(":memory:.wal").exists()


@pytest.fixture
def guard(sandbox: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    """Run in an empty cwd; after the test the workspace and every folder around it are unchanged."""
    monkeypatch.chdir(sandbox["cwd"])
    before_hash = tree_hash(sandbox["ws"])
    before_dirs = _listing(sandbox["base"], sandbox["outside"], sandbox["cwd"])
    yield
    _assert_nothing_changed(sandbox, before_hash, before_dirs)


@pytest.mark.parametrize("sql", REJECTED)
def test_hostile_statement_is_rejected(sql: str, sandbox, session: SqlSession, guard) -> None:
    with pytest.raises(QueryRejectedError) as info:
        session.execute(_fmt(sql, sandbox), limit=5, timeout_s=5)
    assert info.value.message.startswith("This console is read-only:")
    assert SECRET not in str(info.value)
    assert "/root" not in info.value.message and str(Path.home()) not in info.value.message


@pytest.mark.parametrize("sql", FAILING)
def test_hostile_statement_fails_harmlessly(sql: str, sandbox, session: SqlSession, guard) -> None:
    with pytest.raises(WorkspaceError) as info:
        session.execute(_fmt(sql, sandbox), limit=5, timeout_s=5)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(("sql", "rows"), HARMLESS)
def test_comment_and_string_tricks_are_plain_selects(sql: str, rows, session: SqlSession, guard) -> None:
    assert session.execute(sql).result().rows == rows


@pytest.mark.parametrize("sql", RUNAWAY)
def test_runaway_queries_are_stopped(sql: str, session: SqlSession, guard) -> None:
    with pytest.raises(WorkspaceError) as info:
        session.execute(sql, limit=10, timeout_s=2)
    assert isinstance(info.value, QueryTimeoutError) or "memory" in info.value.message
    # The session stays usable afterwards.
    assert session.execute("SELECT 42").result().rows == [[42]]


def test_endless_stream_is_capped_not_materialized(session: SqlSession, guard) -> None:
    cursor = session.execute("SELECT * FROM range(1000000000000) t(n)", limit=100, timeout_s=10)
    assert cursor.row_count == 100 and cursor.truncated and cursor.truncated_reason == "limit"
    # 10 GB of strings if materialized.  Either the byte cap cuts the stream, or (depending on how far the
    # engine's two threads ran ahead) the engine's own memory limit stops it first: both mean it was not kept.
    try:
        big = session.execute("SELECT repeat('x', 100000) AS s FROM range(100000)", limit=10000, timeout_s=20,
                              max_bytes=2_000_000)
    except WorkspaceError as exc:
        assert "memory" in str(exc).lower(), exc
    else:
        assert big.truncated and big.truncated_reason == "bytes" and big.row_count < 10000
    assert session.execute("SELECT 42 AS n").row_count == 1  # and the session still works


def test_engine_layer_alone_blocks_files_and_settings(sandbox, guard) -> None:
    """Layer 1 without the statement check: the locked engine itself refuses every file and setting."""
    import duckdb
    import pyarrow as pa

    conn = locked_connection()
    try:
        conn.register("t", pa.table({"x": [1, 2]}))
        for sql in [
            "COPY t TO '{outside}/x.csv'", "COPY t TO ':memory:'", "COPY t TO ':memory:.wal'",
            "EXPORT DATABASE '{outside}/exp'", "ATTACH '{outside}/n.duckdb'", "ATTACH '{ws}/store.sqlite'",
            "INSTALL sqlite", "LOAD sqlite", "SET enable_external_access = true", "SET lock_configuration = false",
            "SET allowed_directories = ['/']", "SELECT * FROM read_text('{secret}')",
        ]:
            with pytest.raises(duckdb.Error):
                conn.execute(_fmt(sql, sandbox)).fetchall()
        assert conn.execute("SELECT sum(x) FROM t").fetchall() == [(3,)]
    finally:
        conn.close()


def test_engine_reveals_no_path_outside_the_workspace(sandbox, session: SqlSession, guard) -> None:
    forbidden = [str(Path.home()), os.getcwd(), str(sandbox["base"]), "/tmp"]
    for sql in [
        "SELECT name, value FROM duckdb_settings()",
        "SELECT * FROM duckdb_databases()",
        "SELECT * FROM duckdb_temporary_files()",
        "SELECT * FROM duckdb_secrets()",
        "SELECT * FROM pragma_database_list",
        "SELECT current_setting('home_directory'), current_setting('extension_directory'), "
        "current_setting('secret_directory'), current_setting('temp_directory')",
    ]:
        text = json.dumps(session.execute(sql, limit=100000).result().rows)
        for path in forbidden:
            assert path not in text, (sql, path)


# ------------------------------------------------------------------ correct answers


def test_metadata_matches_nirs4all(sandbox, session: SqlSession) -> None:
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    copy = sandbox["base"] / "crosscheck_ws"
    if not copy.exists():
        shutil.copytree(sandbox["ws"], copy)
    store = WorkspaceStore.open_readonly(copy)
    try:
        for sql in [
            "SELECT dataset_name, model_name, partition, count(*) AS n, avg(val_score) AS v FROM predictions "
            "GROUP BY dataset_name, model_name, partition ORDER BY dataset_name, model_name, partition",
            "SELECT prediction_id, val_score, test_score, fold_id FROM predictions ORDER BY prediction_id",
            "SELECT r.name, count(*) AS n FROM runs r JOIN pipelines p ON p.run_id = r.run_id "
            "GROUP BY r.name ORDER BY r.name",
            "SELECT chain_id, model_name, cv_val_score FROM v_chain_summary ORDER BY chain_id",
        ]:
            ours = session.execute(sql, limit=100000).result().rows
            theirs = [list(r) for r in store._fetch_pl(sql).rows()]
            assert len(ours) == len(theirs) > 0
            for a, b in zip(ours, theirs, strict=True):
                for x, y in zip(a, b, strict=True):
                    assert x == y or (isinstance(x, float) and math.isclose(x, y, rel_tol=1e-12)), (sql, a, b)
    finally:
        store.close()


def test_arrays_hold_live_rows_only_and_match_array_store(sandbox, session: SqlSession) -> None:
    import pyarrow.parquet as pq
    from nirs4all.pipeline.storage.array_store import ArrayStore

    from n4a_widgets.core.arrays_readonly import read_tombstones

    ws = sandbox["ws"]
    dead = set(read_tombstones(ws))
    assert dead, "the demo workspace has pending tombstones"
    raw_ids = set()
    for f in (ws / "arrays").glob("*.parquet"):
        raw_ids |= set(pq.read_table(f, columns=["prediction_id"]).column(0).to_pylist())
    assert dead <= raw_ids  # pending deletes are still in the files ...
    rows = session.execute("SELECT prediction_id, dataset_name, y_pred FROM arrays", limit=100000).result().rows
    ids = {r[0] for r in rows}
    assert not ids & dead  # ... but never in `arrays`
    live = {r[0] for r in session.execute("SELECT prediction_id FROM predictions", limit=100000).result().rows}
    assert ids == live
    store = ArrayStore(ws, read_only=True)
    by_id = {r[0]: r for r in rows}
    for name in {r[1] for r in rows}:
        frame = store.load_dataset(name)
        for pid, y_pred in zip(frame["prediction_id"].to_list(), frame["y_pred"].to_list(), strict=True):
            if pid in live:
                assert by_id[pid][2] == pytest.approx(list(y_pred))
    joined = session.execute(
        "SELECT count(*) FROM predictions p JOIN arrays a USING (prediction_id)").result().rows
    assert joined == [[len(live)]]


def test_orphan_array_rows_are_not_in_arrays(demo_ws: Path) -> None:
    (demo_ws / "arrays" / "_tombstones.json").unlink()  # a crash between delete and tombstone: orphans remain
    with SqlSession(demo_ws) as s:
        arrays = {r[0] for r in s.execute("SELECT prediction_id FROM arrays", limit=10**6).result().rows}
        preds = {r[0] for r in s.execute("SELECT prediction_id FROM predictions", limit=10**6).result().rows}
    assert arrays == preds


def test_facade_query_result_shape(demo_ws: Path) -> None:
    before = tree_hash(demo_ws)
    result = Workspace(demo_ws).query("SELECT model_name, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1",
                                      limit=1)
    assert result.columns == ["model_name", "n"]
    assert result.types == ["VARCHAR", "BIGINT"]
    assert result.row_count == 1 and result.truncated is True
    assert isinstance(result.rows, list) and isinstance(result.rows[0], list)
    data = result.to_dict()
    assert {"columns", "rows", "row_count", "truncated", "types", "duration_seconds"} <= set(data)
    json.dumps(data)
    assert "rows" not in result.to_dict(include_rows=False)
    assert tree_hash(demo_ws) == before


def test_plain_json_values(session: SqlSession) -> None:
    row = session.execute(
        "SELECT DATE '2024-01-02' AS d, TIMESTAMP '2024-01-02 03:04:05' AS ts, 1.5::DECIMAL(4,2) AS dec, "
        "'nan'::DOUBLE AS n, [1, 2] AS l, {'a': 1} AS s, '\\x01'::BLOB AS b, uuid() IS NOT NULL AS u, "
        "INTERVAL 2 SECOND AS i, 170141183460469231731687303715884105727::HUGEINT AS h"
    ).result().rows[0]
    assert row[:7] == ["2024-01-02", "2024-01-02T03:04:05", 1.5, None, [1, 2], {"a": 1}, "01"]
    json.dumps(row)


# ------------------------------------------------------------------ paging, limits, cancel


def test_paging_serves_arrow_pages(session: SqlSession) -> None:
    import pyarrow as pa

    cursor = session.execute("SELECT range AS n FROM range(250)", limit=200, page_size=50)
    assert (cursor.row_count, cursor.truncated, cursor.page_count) == (200, True, 4)
    assert cursor.page(3).column("n").to_pylist() == list(range(150, 200))
    page = pa.ipc.open_stream(cursor.page_ipc(1)).read_all()
    assert page.column("n").to_pylist() == list(range(50, 100))
    r = cursor.result(2)
    assert (r.page, r.offset, r.rows[0]) == (2, 100, [100])
    with pytest.raises(InvalidArgumentError):
        cursor.page(4)
    exact = session.execute("SELECT range FROM range(200)", limit=200)
    assert exact.row_count == 200 and not exact.truncated


def test_bad_arguments(session: SqlSession) -> None:
    for kwargs in ({"limit": -1}, {"limit": "10"}, {"timeout_s": 0}, {"page_size": 0}):
        with pytest.raises(InvalidArgumentError):
            session.execute("SELECT 1", **kwargs)
    for sql in ("", "   ", "-- only a comment"):
        with pytest.raises(InvalidArgumentError):
            session.execute(sql)
    with pytest.raises(InvalidArgumentError, match="SQL error"):
        session.execute("SELECT no_such_column FROM predictions")


def test_timeout_interrupts(session: SqlSession) -> None:
    with pytest.raises(QueryTimeoutError, match="longer than 1 s"):
        session.execute("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r",
                        timeout_s=1)


def test_cancel_interrupts(session: SqlSession) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    try:
        with pytest.raises(OperationCancelledError):
            session.execute("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r",
                            timeout_s=60, cancel=cancel)
    finally:
        timer.cancel()
    assert session.execute("SELECT 1").result().rows == [[1]]


def test_session_sees_new_data_after_files_change(demo_ws: Path) -> None:
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    with SqlSession(demo_ws) as s:
        before = s.execute("SELECT count(*) FROM predictions").result().rows[0][0]
        victim = s.execute("SELECT prediction_id FROM predictions ORDER BY prediction_id LIMIT 1").result().rows[0][0]
        store = WorkspaceStore(demo_ws)
        try:
            store.delete_prediction(victim)
        finally:
            store.close()
        assert s.execute("SELECT count(*) FROM predictions").result().rows[0][0] == before - 1
        ids = {r[0] for r in s.execute("SELECT prediction_id FROM arrays", limit=10**6).result().rows}
        assert victim not in ids


# ------------------------------------------------------------------ export


def test_export_writes_full_result_outside_the_workspace(sandbox, guard, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    dest = tmp_path / "out" / "result.parquet"
    dest.parent.mkdir()
    report = export_query(sandbox["ws"], "SELECT p.prediction_id, a.y_pred FROM predictions p JOIN arrays a "
                          "USING (prediction_id)", dest)
    table = pq.read_table(dest)
    live = run_query(sandbox["ws"], "SELECT count(*) FROM predictions").rows[0][0]
    assert report.row_count == table.num_rows == live
    assert sorted(os.listdir(dest.parent)) == ["result.parquet"]  # no temporary file left
    with pytest.raises(InvalidArgumentError, match="inside the workspace"):
        export_query(sandbox["ws"], "SELECT 1", sandbox["ws"] / "arrays" / "x.parquet")
    with pytest.raises(InvalidArgumentError, match="already exists"):
        export_query(sandbox["ws"], "SELECT 1", dest)
    with pytest.raises(QueryRejectedError):
        export_query(sandbox["ws"], "DELETE FROM predictions", tmp_path / "never.parquet")
    assert not (tmp_path / "never.parquet").exists()


def test_export_cancel_leaves_no_file(sandbox, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(OperationCancelledError):
        export_query(sandbox["ws"], "SELECT * FROM range(100000000)", tmp_path / "c.parquet", cancel=cancel)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ legacy stores


@pytest.mark.parametrize("name", ["v0_8_0_duckdb_sidecars", "v0_7_1_duckdb_inline", "v0_9_4_sqlite"])
def test_legacy_stores_are_queried_read_only(name: str, legacy_copy, monkeypatch, tmp_path: Path) -> None:
    ws = legacy_copy(name)
    monkeypatch.chdir(tmp_path)
    before = tree_hash(ws)
    with SqlSession(ws) as s:
        names = {t.name for t in s.schema()}
        assert "predictions" in names and "arrays" in names
        n = s.execute("SELECT count(*) FROM predictions").result().rows[0][0]
        assert n > 0
        s.execute("SELECT * FROM predictions", limit=5).result()
        s.execute("SELECT count(*) FROM arrays").result()
        with pytest.raises(QueryRejectedError):
            s.execute("DELETE FROM predictions")
    assert tree_hash(ws) == before


# ------------------------------------------------------------------ native (ADBC) reads of store.sqlite


def _all_columns(source) -> dict[str, list[str]]:
    return {name: list(t.columns) for name, t in source.tables.items()}


def _dog():
    from n4a_widgets.core.sql import _Watchdog

    return _Watchdog(None, None, None)


def _same_arrays(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert list(a[name]) == list(b[name]), name
        for col in a[name]:
            x, y = a[name][col], b[name][col]
            assert x.type == y.type, (name, col, x.type, y.type)
            assert x.to_pylist() == y.to_pylist(), (name, col)


def test_native_read_equals_python_read_and_leaves_no_trace(demo_ws: Path) -> None:
    """ADBC reads every column of every table exactly as the Python path does, and writes nothing."""
    from n4a_widgets.core.sql import _adbc_load, _SqliteSource

    wal = demo_ws / "store.sqlite-wal"
    for sidecar in (wal, demo_ws / "store.sqlite-shm"):  # no WAL: the trace-free immutable=1 open
        if sidecar.exists() and sidecar.stat().st_size == 0:
            sidecar.unlink()
    assert not wal.exists()
    before = tree_hash(demo_ws)
    source = _SqliteSource(demo_ws / "store.sqlite")
    wanted = _all_columns(source)
    native = _adbc_load(source.db, source.tables, wanted, _dog())
    assert native, "the ADBC SQLite driver is not used (missing adbc-driver-sqlite?)"
    _same_arrays(native, source._python_load(wanted, _dog()))
    assert tree_hash(demo_ws) == before  # no file created (no -wal/-shm) or changed


def test_native_read_honours_read_only_uri_flags(tmp_path: Path) -> None:
    """The driver opens the URI as SQLite does: mode=ro refuses writes and never creates a file, and
    immutable=1 creates no -wal/-shm for a WAL-mode store (plain mode=ro does: the control)."""
    import sqlite3

    import adbc_driver_sqlite.dbapi as adbc_dbapi

    from n4a_widgets.core.sql import _adbc_uri

    db = tmp_path / "store.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    assert sorted(os.listdir(tmp_path)) == ["store.sqlite"]
    before = tree_hash(tmp_path)
    uri = _adbc_uri(db)
    assert uri.endswith("?mode=ro&immutable=1")
    with adbc_dbapi.connect(uri) as c, c.cursor() as cur:
        cur.execute("SELECT x FROM t")
        assert cur.fetch_arrow_table().column(0).to_pylist() == [1]
        with pytest.raises(Exception, match=r"readonly|read-only|read only"):
            cur.execute("INSERT INTO t VALUES (2)")
    assert tree_hash(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["store.sqlite"]
    missing = (tmp_path / "missing.sqlite").as_uri() + "?mode=ro"
    with pytest.raises(Exception, match=r"unable to open|failed to open"), adbc_dbapi.connect(missing) as c:
        c.cursor().execute("SELECT 1")
    assert not (tmp_path / "missing.sqlite").exists()
    with adbc_dbapi.connect(db.as_uri() + "?mode=ro") as c, c.cursor() as cur:  # control: flags are parsed
        cur.execute("SELECT x FROM t")
        cur.fetch_arrow_table()
    assert "store.sqlite-shm" in os.listdir(tmp_path)


def test_native_read_falls_back_on_mixed_storage_classes(tmp_path: Path) -> None:
    """Columns holding values of several SQLite storage classes are read through Python (same answer)."""
    import sqlite3

    from n4a_widgets.core.sql import _adbc_load, _SqliteSource

    db = tmp_path / "store.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE clean (i INTEGER, r REAL, s TEXT, b BLOB, ts TIMESTAMP, n TEXT)")
    conn.executemany("INSERT INTO clean VALUES (?, ?, ?, ?, ?, NULL)",
                     [(k, k / 3, f"s{k}", bytes([k % 256]), f"2024-01-{1 + k % 28:02d}") for k in range(3000)])
    conn.execute("CREATE TABLE mixed_int (i INTEGER)")
    conn.executemany("INSERT INTO mixed_int VALUES (?)", [(1,), (2.5,), ("text",)])
    conn.execute("CREATE TABLE mixed_any (ts TIMESTAMP)")
    conn.executemany("INSERT INTO mixed_any VALUES (?)", [("2024-01-01",), (2.5,)])
    conn.execute("CREATE TABLE mixed_text (s TEXT)")
    conn.executemany("INSERT INTO mixed_text VALUES (?)", [("a",), (b"\xff",)])
    conn.execute("CREATE TABLE empty (i INTEGER, s TEXT, r REAL, ts TIMESTAMP)")
    conn.commit()
    conn.close()
    source = _SqliteSource(db)
    clean = {"clean": list(source.tables["clean"].columns), "empty": list(source.tables["empty"].columns)}
    native = _adbc_load(db, source.tables, clean, _dog())
    _same_arrays(native, source._python_load(clean, _dog()))
    for name in ("mixed_int", "mixed_any", "mixed_text"):
        wanted = {"clean": ["i"], name: list(source.tables[name].columns)}
        assert _adbc_load(db, source.tables, wanted, _dog()) == {}, name
        _same_arrays(source.load(wanted, _dog()), source._python_load(wanted, _dog()))


def test_arrays_in_memory_and_streamed_give_the_same_rows(sandbox, session: SqlSession) -> None:
    sql = ("SELECT p.prediction_id, p.partition, a.y_true, a.y_pred FROM predictions p JOIN arrays a "
           "USING (prediction_id) ORDER BY p.prediction_id")
    in_memory = session.execute(sql, limit=100000).result().rows
    state = session.engine_state()
    assert state["arrays_mode"] == "table"
    live = session.execute("SELECT count(*) FROM predictions").result().rows[0][0]
    assert state["arrays_rows"] == live
    with SqlSession(sandbox["ws"], arrays_memory_bytes=0) as streamed:
        assert streamed.execute(sql, limit=100000).result().rows == in_memory
        assert streamed.engine_state()["arrays_mode"] == "dataset"
    assert len(in_memory) == live


# ------------------------------------------------------------------ contracts with nirs4all


def test_contract_array_schema_matches_nirs4all() -> None:
    from nirs4all.pipeline.storage import array_store

    from n4a_widgets.core.sql import _empty_array_schema

    assert _empty_array_schema().equals(array_store._PARQUET_SCHEMA)


def test_contract_tombstones_read_like_nirs4all(demo_ws: Path) -> None:
    from n4a_widgets.core.arrays_readonly import read_tombstones, tombstone_ids

    assert tombstone_ids(demo_ws) == set(read_tombstones(demo_ws)) != set()


def test_contract_adbc_sqlite_batch_rows_option() -> None:
    """``_adbc_load`` reads a table as one batch through this driver option."""
    import adbc_driver_sqlite

    assert adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value == "adbc.sqlite.query.batch_rows"


def test_contract_private_fetch_pl_exists() -> None:
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    assert callable(WorkspaceStore._fetch_pl)


def test_arrays_of_the_page_only_give_the_same_rows(sandbox, session: SqlSession) -> None:
    """Late materialization (arrays fetched for the kept rows only) answers exactly like a full scan."""
    sqls = [
        "SELECT p.prediction_id, p.val_score, a.y_true, a.y_pred FROM predictions p JOIN arrays a "
        "USING (prediction_id) WHERE p.partition = 'val' ORDER BY p.val_score, p.prediction_id LIMIT 7",
        "SELECT a.y_pred, p.model_name, a.prediction_id FROM predictions p LEFT JOIN arrays a "
        "USING (prediction_id) ORDER BY p.prediction_id DESC LIMIT 11",
        "SELECT y_true FROM arrays WHERE partition = 'test' ORDER BY prediction_id LIMIT 0",
    ]
    with SqlSession(sandbox["ws"], arrays_memory_bytes=20_000) as late:
        for sql in sqls:
            want = session.execute(sql, limit=1000).result()
            got = late.execute(sql, limit=1000).result()
            assert late.engine_state()["arrays_mode"] == "late", sql
            assert got.rows == want.rows and got.types == want.types, sql
        # a query that computes on an array column cannot be answered late: it streams instead
        sql = "SELECT prediction_id, len(y_pred) AS n FROM arrays ORDER BY prediction_id LIMIT 5"
        assert late.execute(sql).result().rows == session.execute(sql).result().rows
        assert late.engine_state()["arrays_mode"] == "dataset"


def test_a_prestarted_worker_serves_the_next_session_and_sees_later_changes(demo_ws: Path) -> None:
    """The spare worker left by one session is taken by the next; tables it loaded while idle are re-read
    when the workspace changed in between (a deletion through nirs4all)."""
    from n4a_widgets.core.sql import session as session_module
    from n4a_widgets.demo import delete_some_predictions

    count = "SELECT count(*) FROM predictions"
    with SqlSession(demo_ws) as first:
        before = first.execute(count).result().rows[0][0]
        key = first._spare_key()
        spare = session_module._SPARE.get(key)
        assert spare is not None and spare.poll() is None
    time.sleep(1.0)  # let the spare load its tables
    delete_some_predictions(demo_ws, count=3)
    with SqlSession(demo_ws) as second:
        assert second._proc is spare  # the pre-started worker, not a new one
        assert second.execute(count).result().rows[0][0] == before - 3
    with SqlSession(demo_ws, prestart=False) as fresh:
        assert fresh._proc is not session_module._SPARE.get(key)
        assert fresh.execute(count).result().rows[0][0] == before - 3


def test_adbc_driver_loads_without_polars_and_leaves_it_importable() -> None:
    """The worker hides polars while importing ADBC's DB-API (0.8 s saved); polars still imports after."""
    code = (
        "import sys\n"
        "from n4a_widgets.core.readonly_sqlite import import_adbc\n"
        "import_adbc()\n"
        "assert 'polars' not in sys.modules, sorted(m for m in sys.modules if m.startswith('polars'))\n"
        "import polars\n"
        "print(polars.DataFrame({'a': [1]}).height)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_page_rows_are_taken_across_streamed_batches(tmp_path: Path) -> None:
    """The arrays of a page's rows come from the right rows, whichever batch they fall in (and in any order)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from n4a_widgets.core.arrays_readonly import TAKE_BATCH_ROWS, take_rows

    n = 2 * TAKE_BATCH_ROWS + 100
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"y": [[float(i), i + 0.5] for i in range(n)], "z": [str(i) for i in range(n)]}), path)
    rows = [n - 1, 0, TAKE_BATCH_ROWS - 1, TAKE_BATCH_ROWS, 5, TAKE_BATCH_ROWS, 2 * TAKE_BATCH_ROWS + 3]
    got = take_rows(path, rows, ["y", "z"])
    assert got.column("y").to_pylist() == [[float(r), r + 0.5] for r in rows]
    assert got.column("z").to_pylist() == [str(r) for r in rows]
    assert take_rows(path, [], ["z"]).num_rows == 0
    with pytest.raises(IndexError):
        take_rows(path, [n], ["z"])


def test_warm_up_loads_the_common_columns_within_its_budget(demo_ws: Path, monkeypatch) -> None:
    """The console's warm-up loads the most used columns, as many as its memory budget holds (the id always)."""
    import sqlite3

    from n4a_widgets.core.sql.local import LocalEngine

    with LocalEngine(demo_ws) as engine:
        engine.warm_up()
        loaded = engine.state()["loaded"]["predictions"]
    assert [c for c in LocalEngine.WARM_COLUMNS if c in loaded] == list(LocalEngine.WARM_COLUMNS), loaded

    sql = "SELECT model_name, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1"
    with LocalEngine(demo_ws) as engine:
        engine._refresh()
        sizes = engine._source.column_bytes("predictions", ["prediction_id", "dataset_name"])
        assert sizes["prediction_id"] > sizes["dataset_name"] > 0
        monkeypatch.setattr(LocalEngine, "WARM_BYTES", int(sizes["prediction_id"] + sizes["dataset_name"]) + 1)
        engine.warm_up()
        assert engine.state()["loaded"]["predictions"] == ["prediction_id", "dataset_name"]
        # a query needing more loads the rest itself, and answers as SQLite does
        got = engine.run(sql, limit=100, timeout_s=30, cancel=None).table.to_pylist()
    with sqlite3.connect(demo_ws / "store.sqlite") as conn:
        want = [{"model_name": m, "n": n} for m, n in conn.execute(sql)]
    assert got == want
