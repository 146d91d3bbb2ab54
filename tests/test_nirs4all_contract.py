"""Guards for the nirs4all internals the foundation relies on.

If nirs4all changes one of these, a test here fails loudly with the name of
what changed, instead of health() silently reporting wrong numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from n4a_widgets import Workspace

from helpers import LEGACY_FIXTURES


def _all_format_cases(tmp_path: Path, demo_ws: Path) -> list[Path]:
    cases = [demo_ws, tmp_path / "empty"]
    (tmp_path / "empty").mkdir()
    if LEGACY_FIXTURES.is_dir():
        for src in sorted(p for p in LEGACY_FIXTURES.iterdir() if p.is_dir()):
            dst = tmp_path / src.name
            shutil.copytree(src, dst)
            cases.append(dst)
    return cases


def test_format_names_agree_with_inspect_workspace_format(tmp_path: Path, demo_ws: Path) -> None:
    from nirs4all.workspace.compat import inspect_workspace_format

    cases = _all_format_cases(tmp_path, demo_ws)
    assert len(cases) >= 3
    for path in cases:
        ours = Workspace(path).status().format
        # inspect_workspace_format may create -wal/-shm files: call it last, on a copy.
        probe = tmp_path / "probe"
        shutil.rmtree(probe, ignore_errors=True)
        shutil.copytree(path, probe)
        theirs = inspect_workspace_format(probe).format
        assert ours == theirs, f"{path.name}: we say {ours}, nirs4all says {theirs}"


def test_schema_version_constant() -> None:
    from nirs4all.pipeline.storage.store_schema import SCHEMA_VERSION

    assert SCHEMA_VERSION == 5, "nirs4all's SQLite schema moved on: review status() legacy detection"


def test_array_store_private_helpers(demo_ws: Path) -> None:
    from nirs4all.pipeline.storage.array_store import ArrayStore

    store = ArrayStore(demo_ws, read_only=True)
    assert store._parquet_path("wheat.protein v2").name == "wheat_protein_v2.parquet"  # noqa: SLF001
    tombstones = store._read_tombstones()  # noqa: SLF001
    assert isinstance(tombstones, dict) and len(tombstones) == 4
    raw = json.loads((demo_ws / "arrays" / "_tombstones.json").read_text())
    assert set(raw) == set(tombstones)


def test_read_only_array_store_creates_nothing(tmp_path: Path) -> None:
    from nirs4all.pipeline.storage.array_store import ArrayStore

    ArrayStore(tmp_path, read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_array_file_columns(demo_ws: Path) -> None:
    import pyarrow.parquet as pq

    for path in (demo_ws / "arrays").glob("*.parquet"):
        names = set(pq.read_schema(path).names)
        assert {"prediction_id", "dataset_name", "y_true", "y_pred"} <= names


@pytest.mark.parametrize("name", ["v0_8_11_sqlite"])
def test_readonly_store_refuses_old_schemas(name: str, legacy_copy) -> None:
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    ws = legacy_copy(name)
    with pytest.raises(RuntimeError, match="requires schema"):
        WorkspaceStore.open_readonly(ws)
