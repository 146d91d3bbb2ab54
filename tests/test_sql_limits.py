"""Hard limits of the SQL console (issue 13): time, memory, environment, engine recovery, error types, export.

Each test tries to break a limit with a *family* of statements built here (not
a list of known reproducers), asserts the limit held — the call came back
within the time limit plus the worker's grace, the kernel's memory did not
grow, the error is a ``WorkspaceError`` — and that nothing changed on disk.
The bounds on elapsed time are the limits under test (timeout + grace + slack
for a loaded machine), not speed targets; speed lives in bench/bench_sql.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
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
from n4a_widgets.core.sql import (
    ALLOWED_TABLE_FUNCTIONS,
    MAX_SQL_CHARS,
    EngineRestartedError,
    SqlSession,
    export_query,
    locked_connection,
    resolve_export_path,
)
from n4a_widgets.core.sql.session import CANCEL_GRACE_S, GRACE_S

from helpers import tree_hash

#: Slack for a shared, loaded machine on top of a limit (kill, reap, and Python's own scheduling).
SLACK_S = 3.0
#: How much the test process itself may grow while a hostile query runs in the worker.
KERNEL_GROWTH = 300 * 1024 * 1024


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRss:
    """Samples this process's resident memory while a call runs."""

    def __enter__(self) -> _PeakRss:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth(self) -> int:
        return self.peak - self.start


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, demo_master: Path) -> Path:
    root = tmp_path_factory.mktemp("sql_limits") / "ws"
    shutil.copytree(demo_master, root)
    return root


@pytest.fixture(scope="module")
def session(ws: Path):
    s = SqlSession(ws)
    yield s
    s.close()


@pytest.fixture
def unchanged(ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    before = tree_hash(ws)
    yield
    assert tree_hash(ws) == before
    assert os.listdir(tmp_path) == []


def _chain(levels: int) -> str:
    """CTEs that each double the previous one (rows or text), never materialized."""
    parts = ["c0 AS NOT MATERIALIZED (SELECT 'ab' AS s)"]
    parts += [f"c{i} AS NOT MATERIALIZED (SELECT x.s || y.s AS s FROM c{i - 1} x, c{i - 1} y)"
              for i in range(1, levels)]
    return "WITH " + ", ".join(parts) + f" SELECT max(length(s)) FROM c{levels - 1}"


def _union(branches: int) -> str:
    return " UNION ALL ".join(f"SELECT {i}" for i in range(branches))


def _in_list(n: int) -> str:
    return "SELECT count(*) FROM range(10) t(x) WHERE x IN (" + ",".join(str(i * 7) for i in range(n)) + ")"


def _nested(depth: int) -> str:
    return "SELECT " + "(" * depth + "1" + ")" * depth


HEAVY = {
    "huge repeated text": "SELECT length(repeat('xy', 1200000000))",
    "huge padded text": "SELECT length(lpad('', 2000000000, 'ab'))",
    "huge range list": "SELECT len(range(600000000))",
    "split of a huge text": "SELECT len(string_split(repeat('a,', 400000000), ','))",
    "doubling CTE chain": _chain(40),
    "thousands of UNION ALL branches": _union(4500),
    "huge IN list": _in_list(14000),
    "quadratic text function": "SELECT length(replace(repeat('ab', 50000000), 'a', repeat('c', 200)))",
    "list aggregate of a range": "SELECT len(list(range)) FROM range(3000000000)",
}


@pytest.mark.parametrize("name", list(HEAVY))
def test_heavy_statements_stop_within_the_time_limit(name: str, session: SqlSession, unchanged) -> None:
    sql = HEAVY[name]
    assert len(sql) <= MAX_SQL_CHARS
    timeout = 2.0
    started = time.monotonic()
    with _PeakRss() as mem:
        try:
            session.execute(sql, limit=10, timeout_s=timeout).result()
        except WorkspaceError as exc:
            assert isinstance(exc, (QueryTimeoutError, QueryRejectedError)) or "memory" in exc.message, exc
        # a statement that finishes within the limit is fine too: the limit held
    assert time.monotonic() - started < timeout + GRACE_S + SLACK_S
    assert mem.growth < KERNEL_GROWTH
    assert session.execute("SELECT 42").result().rows == [[42]]  # the session recovers (a new engine if needed)


def test_statement_length_is_capped_before_parsing(session: SqlSession) -> None:
    for sql in (_union(20000), _in_list(60000), "SELECT 1 -- " + "x" * MAX_SQL_CHARS):
        with pytest.raises(QueryRejectedError, match="at most"):
            session.execute(sql)


def test_deep_nesting_is_a_workspace_error(session: SqlSession) -> None:
    for sql in (_nested(5000), "SELECT " + "[" * 3000 + "1" + "]" * 3000, "SELECT " + "-" * 20000 + "1"):
        with pytest.raises(WorkspaceError):
            session.execute(sql, timeout_s=5).result()
    assert session.execute("SELECT 1").result().rows == [[1]]


def test_memory_cap_holds_with_the_worker_under_pressure(ws: Path, unchanged) -> None:
    """A small cap: allocations outside DuckDB's buffer manager stop the worker, not the kernel."""
    cap = 400 * 1024 * 1024
    with SqlSession(ws, memory_cap_bytes=cap, memory_limit="200MB") as s:
        for sql in (
            "SELECT length(string_agg(repeat('x', 1000000), '')) FROM range(3000)",
            "SELECT len(range(200000000))",
            "SELECT length(repeat('ab', 600000000))",
        ):
            with _PeakRss() as mem, pytest.raises(WorkspaceError) as info:
                s.execute(sql, timeout_s=30, limit=10).result()
            assert "memory" in info.value.message or isinstance(info.value, (QueryTimeoutError, EngineRestartedError))
            assert mem.growth < KERNEL_GROWTH
            assert s.execute("SELECT count(*) FROM predictions").result().rows[0][0] > 0


def test_memory_cap_kills_the_worker_when_the_engine_would_not_stop(ws: Path, unchanged) -> None:
    """The engine's own limit set far above the cap: only the session's watch on the worker holds."""
    cap = 300 * 1024 * 1024
    with SqlSession(ws, memory_cap_bytes=cap, memory_limit="8GB") as s:
        with _PeakRss() as mem, pytest.raises(WorkspaceError, match="memory") as info:
            s.execute("SELECT length(string_agg(repeat('x', 1000000), '')) FROM range(2000)", timeout_s=60)
        assert "0.3 GB" in info.value.message or "memory" in info.value.message
        assert mem.growth < KERNEL_GROWTH
        assert s.restarts == 1 and "memory cap" in s.notices[-1]
        assert s.execute("SELECT count(*) FROM runs").result().rows[0][0] > 0


def test_result_conversion_is_capped_and_inside_the_limits(session: SqlSession) -> None:
    """1,000 rows of 30,000-element lists: bytes capped before rows are kept; the page is converted under a cap."""
    sql = "SELECT range(30000)::DOUBLE[] AS l FROM range(1000)"
    with _PeakRss() as mem:
        kept = session.execute(sql, limit=1000, timeout_s=60, max_bytes=20_000_000)
        assert kept.truncated_reason == "bytes" and 0 < kept.row_count < 1000
        assert kept.row_count * 30000 * 8 <= 20_000_000
        full = session.execute(sql, limit=1000, timeout_s=60)
        result = full.result()
    assert result.truncated and result.truncated_reason == "bytes"
    assert len(result.rows) == result.row_count < full.row_count
    assert mem.growth < KERNEL_GROWTH
    page = full.page_ipc(0)
    assert len(page) <= session.page_bytes + 1024 * 1024


def test_wide_rows_are_fetched_in_small_batches(ws: Path) -> None:
    """A 240 MB result of wide rows fits a worker capped at twice its size.

    DuckDB builds a whole Arrow batch (doubling its buffers) before we can look at it: with
    1,024-row batches this result needed one 256 MB buffer plus its copy, and failed the cap (in CI,
    on a busy machine, even the default cap).  Batches of a few rows keep the peak near the result.
    """
    sql = "SELECT range(30000)::DOUBLE[] AS l FROM range(1000)"
    with SqlSession(ws, memory_cap_bytes=480 * 1024 * 1024, prestart=False) as capped:
        cursor = capped.execute(sql, limit=1000, timeout_s=60)
        assert cursor.row_count == 1000 and not cursor.truncated_reason


def test_values_python_cannot_hold_become_text(session: SqlSession) -> None:
    cursor = session.execute(
        "SELECT 'infinity'::DATE AS d, '-infinity'::TIMESTAMP AS ts, 'infinity'::TIMESTAMPTZ AS tz, "
        "INTERVAL 3 MONTH AS i, [DATE 'infinity'] AS l, {'a': 'infinity'::DATE} AS s"
    )
    row = cursor.result().rows[0]
    json.dumps(row)
    assert all(v is not None for v in row)
    cursor.page_ipc(0)
    cursor.page(0)


def test_cancel_takes_effect_within_a_second(session: SqlSession) -> None:
    for sql in (_union(4500), "SELECT count(*) FROM range(100000000000) a(x) WHERE x % 7 = 3",
                "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"):
        cancel = threading.Event()
        pressed: list[float] = []

        def press(ev: threading.Event = cancel, at: list[float] = pressed) -> None:
            at.append(time.monotonic())
            ev.set()

        timer = threading.Timer(0.5, press)
        timer.start()
        try:
            with pytest.raises(OperationCancelledError):
                session.execute(sql, timeout_s=60, cancel=cancel)
        finally:
            timer.cancel()
        assert time.monotonic() - pressed[0] < CANCEL_GRACE_S + 0.5 + SLACK_S / 3
    assert session.execute("SELECT 7").result().rows == [[7]]


def test_interrupt_from_another_thread(session: SqlSession) -> None:
    timer = threading.Timer(0.3, session.interrupt)
    timer.start()
    with pytest.raises(OperationCancelledError):
        session.execute(_union(4500), timeout_s=60)
    assert session.execute("SELECT 8").result().rows == [[8]]


# ------------------------------------------------------------------ environment

MARK = "s3cr3t-n4a"
HOSTILE_ENV = {
    "HTTP_PROXY": f"http://user:{MARK}@127.0.0.1:9",
    "HTTPS_PROXY": f"http://user:{MARK}@127.0.0.1:9",
    "http_proxy": f"http://user:{MARK}@127.0.0.1:9",
    "ALL_PROXY": f"socks5://user:{MARK}@127.0.0.1:9",
    "NO_PROXY": f"{MARK}.internal",
    "TZ": "Pacific/Chatham",
    "AWS_ACCESS_KEY_ID": f"AKIA{MARK}",
    "AWS_SECRET_ACCESS_KEY": f"{MARK}-aws",
    "AWS_SESSION_TOKEN": f"{MARK}-token",
    "GOOGLE_APPLICATION_CREDENTIALS": f"/{MARK}/creds.json",
    "HF_TOKEN": f"hf_{MARK}",
    "DUCKDB_HOME": f"/{MARK}/duckdb",
    "HOME": f"/{MARK}/home",
    "TMPDIR": f"/{MARK}/tmp",
}


def _settings(s: SqlSession) -> dict[str, object]:
    rows = s.execute("SELECT name, value FROM duckdb_settings()", limit=100000).result().rows
    return {r[0]: r[1] for r in rows}


def test_nothing_from_the_environment_is_readable(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SqlSession(ws) as clean:
        baseline = _settings(clean)
    for key, value in HOSTILE_ENV.items():
        monkeypatch.setenv(key, value)
    with SqlSession(ws) as s:
        hostile = _settings(s)
        probes = s.execute(
            "SELECT current_setting('http_proxy'), current_setting('TimeZone'), "
            "current_setting('http_proxy_password'), strftime(TIMESTAMPTZ '2024-01-01 00:00:00+00', '%H')"
        ).result().rows[0]
    assert hostile == baseline  # every setting DuckDB derives from the environment is neutral
    text = json.dumps(hostile)
    assert MARK not in text and "Chatham" not in text
    assert probes == ["", "UTC", "", "00"]


def test_engine_layer_alone_neutralises_env_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in HOSTILE_ENV.items():
        monkeypatch.setenv(key, value)
    conn = locked_connection()
    try:
        rows = conn.execute("SELECT name, value FROM duckdb_settings()").fetchall()
    finally:
        conn.close()
    text = json.dumps(rows)
    assert MARK not in text and "Chatham" not in text


# ------------------------------------------------------------------ recovery and error types


def test_internal_error_recreates_the_engine(ws: Path) -> None:
    with SqlSession(ws, _faults=True) as s:
        assert s.execute("SELECT count(*) FROM runs").result().rows[0][0] > 0
        with pytest.raises(EngineRestartedError) as info:
            s._inject("internal")
        assert "restarted" in info.value.message
        assert "/" not in info.value.message and "Stack" not in str(info.value)
        assert info.value.__cause__ is None
        assert s.restarts == 1 and "internal error" in s.notices[-1]
        assert s.execute("SELECT count(*) FROM runs").result().rows[0][0] > 0
        with pytest.raises(EngineRestartedError):
            s._inject("crash")
        assert s.execute("SELECT 1").result().rows == [[1]]
        with pytest.raises(QueryTimeoutError):
            s._inject("hang", timeout_s=1)
        assert s.execute("SELECT 2").result().rows == [[2]] and s.restarts == 3


def test_a_killed_worker_is_replaced(ws: Path) -> None:
    with SqlSession(ws) as s:
        cursor = s.execute("SELECT range FROM range(10)", page_size=5)
        assert s._proc is not None
        os.kill(s._proc.pid, signal.SIGKILL)
        s._proc.wait()
        assert s.execute("SELECT 3").result().rows == [[3]]
        with pytest.raises(WorkspaceError, match="no longer available"):
            cursor.page_rows(1)


def _keywords() -> list[str]:
    conn = locked_connection()
    try:
        return sorted(str(r[0]) for r in conn.execute("SELECT keyword_name FROM duckdb_keywords()").fetchall())
    finally:
        conn.close()


def test_every_statement_shape_fails_as_a_workspace_error(session: SqlSession, unchanged) -> None:
    """Each keyword of the grammar as a statement head: a result or a WorkspaceError, never anything else."""
    for word in _keywords():
        for sql in (f"{word}", f"{word} predictions", f"{word} 1", f"SELECT {word}", f"SELECT * FROM {word}"):
            try:
                session.execute(sql, limit=5, timeout_s=5).result()
            except WorkspaceError as exc:
                assert "Traceback" not in str(exc) and "/site-packages" not in str(exc)
            except Exception as exc:  # noqa: BLE001 - the assertion is that nothing else escapes
                pytest.fail(f"{sql!r} raised {type(exc).__name__}: {exc}")


def test_state_changing_table_functions_are_refused(session: SqlSession) -> None:
    """Every table function of the engine outside the read-only allowlist is refused, whatever its name."""
    conn = locked_connection()
    try:
        names = sorted({str(r[0]) for r in conn.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_type IN ('table', 'table_macro')"
        ).fetchall()})
    finally:
        conn.close()
    refused = [n for n in names if n not in ALLOWED_TABLE_FUNCTIONS]
    assert "register_external_resource" in refused and "checkpoint" in refused
    for name in refused:
        with pytest.raises(QueryRejectedError):
            session.execute(f"SELECT * FROM {name}('a', 'b')", timeout_s=5)
    with pytest.raises(QueryRejectedError):
        session.execute("SELECT write_log('x')")


@pytest.mark.parametrize("kwargs", [
    {"max_bytes": -1}, {"max_bytes": 1.5}, {"timeout_s": float("inf")}, {"timeout_s": float("nan")},
    {"timeout_s": None}, {"timeout_s": True}, {"timeout_s": -1}, {"limit": True},
])
def test_out_of_range_options_are_refused(kwargs: dict, session: SqlSession) -> None:
    with pytest.raises(InvalidArgumentError):
        session.execute("SELECT 1", **kwargs)


def test_catalog_words_in_comments_load_nothing_extra(ws: Path) -> None:
    with SqlSession(ws, prestart=False) as s:  # a fresh engine: a pre-started one has loaded predictions already
        s.execute("SELECT count(*) FROM runs -- show query describe summarize information_schema")
        s.execute("/* describe predictions; show tables; query('x') */ SELECT 1")
        s.execute("SELECT 'show tables' AS s, 'describe predictions' AS d")
        loaded = s.engine_state()["loaded"]
        assert set(loaded) == {"runs"} and len(loaded["runs"]) == 1
        s.execute("DESCRIBE predictions")
        assert "predictions" in s.engine_state()["loaded"]


# ------------------------------------------------------------------ export destinations


def _array_file(ws: Path) -> Path:
    return sorted((ws / "arrays").glob("*.parquet"))[0]


def test_export_refuses_a_folder_swapped_for_a_link_while_writing(ws: Path, tmp_path: Path) -> None:
    before = tree_hash(ws)
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    victim = _array_file(ws)
    swapped: list[bool] = []

    def swap(_f: float, message: str) -> None:
        if "written" in message and not swapped:  # while batches are being written
            swapped.append(True)
            target_dir.rename(tmp_path / "moved")
            target_dir.symlink_to(ws / "arrays")

    with pytest.raises(InvalidArgumentError, match="changed"):
        export_query(ws, "SELECT * FROM predictions", target_dir / victim.name, overwrite=True, progress=swap)
    assert swapped and tree_hash(ws) == before
    assert not [p for p in (ws / "arrays").iterdir() if p.name.endswith(".tmp")]
    assert os.listdir(tmp_path / "moved") == []  # the temporary file was removed too


def test_export_refuses_a_folder_swapped_between_check_and_write(ws: Path, tmp_path: Path) -> None:
    before = tree_hash(ws)
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    victim = _array_file(ws)
    target = resolve_export_path(ws, target_dir / victim.name, overwrite=True)  # the console checks first ...
    target_dir.rmdir()
    target_dir.symlink_to(ws / "arrays")  # ... the folder becomes a link into the workspace ...
    with SqlSession(ws) as s, pytest.raises(InvalidArgumentError, match="inside the workspace"):
        s.export("SELECT * FROM predictions", target, overwrite=True)  # ... and the export refuses
    assert tree_hash(ws) == before


def test_export_refuses_arrays_that_are_a_link(ws: Path, tmp_path: Path) -> None:
    """Users move arrays/ to a bigger disk and leave a link: both spellings of it are the workspace."""
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    disk = tmp_path / "bigdisk"
    (copy / "arrays").rename(disk)
    (copy / "arrays").symlink_to(disk)
    before = tree_hash(disk)
    victim = _array_file(copy)
    for dest in (copy / "arrays" / victim.name, disk / victim.name, disk / "new.parquet",
                 tmp_path / "ws" / "arrays" / ".." / "arrays" / "x.parquet"):
        with pytest.raises(InvalidArgumentError, match="inside the workspace"):
            export_query(copy, "SELECT * FROM predictions", dest, overwrite=True)
    assert tree_hash(disk) == before
    link = tmp_path / "link.parquet"
    link.symlink_to(disk / victim.name)  # a link outside that points at an array file
    with pytest.raises(InvalidArgumentError, match="inside the workspace"):
        export_query(copy, "SELECT 1", link, overwrite=True)
    assert tree_hash(disk) == before


def test_export_does_not_replace_a_file_that_appears_meanwhile(ws: Path, tmp_path: Path) -> None:
    dest = tmp_path / "r.parquet"

    def appear(_f: float, message: str) -> None:
        if "written" in message and not dest.exists():
            dest.write_text("mine")

    with pytest.raises(InvalidArgumentError, match="already exists"):
        export_query(ws, "SELECT * FROM runs", dest, progress=appear)
    assert dest.read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["r.parquet"]
