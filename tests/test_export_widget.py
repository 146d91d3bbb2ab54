"""ExportPicker driven through its Python twins, and the ``export`` CLI verb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from n4a_widgets import ExportPicker
from n4a_widgets.widgets.export_picker import download_link, download_path

from helpers import tree_hash


def test_picker_lists_datasets_and_filters(demo_ws: Path) -> None:
    before = tree_hash(demo_ws)
    w = ExportPicker(demo_ws)
    assert w.wait(60) and w.state == "done", w.error
    names = [d["name"] for d in w.choices["datasets"]]
    assert names == ["corn moisture", "tablets", "wheat.protein v2"]
    assert w.selected == names  # all ticked by default
    tablets = w.choices["datasets"][1]
    assert tablets["prediction_count"] == 30 and tablets["pending_tombstones"] == 4
    assert tablets["parquet_size_bytes"] > 0
    assert set(w.choices["partitions"]) == {"train", "val", "test"}
    assert "PLSRegression" in w.choices["models"] and "avg" in w.choices["folds"]
    assert w.default_dest.endswith("_predictions.zip")
    assert tree_hash(demo_ws) == before


def test_twins_export_with_filters(demo_ws: Path, tmp_path: Path) -> None:
    w = ExportPicker(demo_ws)
    w.wait(60)
    w.select(["tablets", "corn moisture"])
    w.set_filters(partition="val")
    w.export(tmp_path / "val.zip")
    assert w.wait(60) and w.state == "done", w.error
    assert w.report["format"] == "zip" and w.report["partition"] == "val"
    with zipfile.ZipFile(tmp_path / "val.zip") as zf:
        assert sorted(zf.namelist()) == ["corn_moisture.parquet", "tablets.parquet"]
    assert w.download_path == "" and "outside the folder" in w.download_reason  # not under the server root
    w.server_root = str(tmp_path)  # what the page reports: now the link can be built
    assert w.download_path == "val.zip" and w.download_reason == ""
    json.dumps(w.report)


def test_export_button_message_and_download_path(demo_ws: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    w = ExportPicker(demo_ws)
    w.wait(60)
    w._on_message(w, {"action": "select", "args": {"datasets": ["tablets"]}}, [])
    assert w.default_dest == str(tmp_path / "tablets.parquet")
    w._on_message(w, {"action": "export", "args": {"dest": "", "format": "auto", "overwrite": False}}, [])
    assert w.wait(60) and w.state == "done", w.error
    assert w.report["dest"] == str(tmp_path / "tablets.parquet")
    assert w.download_path == "tablets.parquet"
    # Again without overwrite: a clear error, the file untouched.
    w._on_message(w, {"action": "export", "args": {}}, [])
    w.wait(60)
    assert w.state == "error" and "already exists" in w.error["message"]


def test_select_unknown_and_nothing_selected(demo_ws: Path, tmp_path: Path) -> None:
    w = ExportPicker(demo_ws)
    w.wait(60)
    w._on_message(w, {"action": "select", "args": {"datasets": ["barley"]}}, [])
    assert w.state == "error" and "barley" in w.error["message"]
    w.select_none()
    w._on_message(w, {"action": "export", "args": {"dest": str(tmp_path / "x.zip")}}, [])
    assert w.state == "error" and "No dataset" in w.error["message"]
    assert not (tmp_path / "x.zip").exists()


def test_download_path_rules(tmp_path: Path) -> None:
    nb = tmp_path / "root" / "sub"
    nb.mkdir(parents=True)
    assert download_path(nb / "a b.zip", cwd=nb, session_name="") == "a b.zip"
    assert download_path(nb / "out" / "x.parquet", cwd=nb, session_name="sub/nb.ipynb") == "sub/out/x.parquet"
    assert download_path(tmp_path / "x.zip", cwd=nb, session_name="") == ""
    assert download_path(nb / "x.zip", cwd=nb, session_name="/abs/nb.ipynb") == "x.zip"


def test_download_link_from_the_server_root(tmp_path: Path) -> None:
    root = tmp_path / "project"
    nb = root / "notebooks"
    nb.mkdir(parents=True)
    # The common case (issue 16): server root above the notebook folder, absolute session path.
    assert download_link(nb / "a b.zip", server_root=str(root), cwd=nb,
                         session_name=str(nb / "nb.ipynb")) == ("notebooks/a b.zip", "")
    assert download_link(nb / "x.zip", cwd=nb, session_name="notebooks/nb.ipynb") == ("notebooks/x.zip", "")
    path, reason = download_link(tmp_path / "x.zip", server_root=str(root), cwd=nb)
    assert path == "" and "outside the folder this Jupyter server shares" in reason and str(root) in reason
    path, reason = download_link(root / ".cache" / "x.zip", server_root=str(root), cwd=nb)
    assert path == "" and "hidden folder" in reason
    # the server root as the page gives it, with ~ and a trailing slash
    home = Path.home()
    assert download_link(home / "p" / "y.zip", server_root="~/p/")[0] == "y.zip"


def test_bad_workspace_shows_error(tmp_path: Path) -> None:
    w = ExportPicker(tmp_path / "missing")
    assert w.state == "error" and "does not exist" in w.error["message"]


# ---------------------------------------------------------------- CLI


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "n4a_widgets", *args], capture_output=True, text=True, timeout=180)


def test_cli_export_json(demo_ws: Path, tmp_path: Path) -> None:
    before = tree_hash(demo_ws)
    out = cli("export", str(demo_ws), str(tmp_path / "x.zip"), "--dataset", "tablets", "--dataset", "wheat.protein v2",
              "--partition", "val", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["format"] == "zip" and data["datasets"] == ["tablets", "wheat.protein v2"]
    assert data["total_rows"] == sum(f["rows"] for f in data["files"]) > 0
    assert tree_hash(demo_ws) == before


def test_cli_errors_exit_non_zero(demo_ws: Path, tmp_path: Path) -> None:
    out = cli("export", str(demo_ws), str(tmp_path / "x.parquet"), "--dataset", "barley")
    assert out.returncode == 1 and "Unknown dataset" in out.stderr and "tablets" in out.stderr
    out = cli("export", str(demo_ws), str(tmp_path / "x.zip"), "--model", "NoSuchModel")
    assert out.returncode == 1 and "nothing was written" in out.stderr
    (tmp_path / "y.parquet").write_text("x")
    out = cli("export", str(demo_ws), str(tmp_path / "y.parquet"), "--dataset", "tablets")
    assert out.returncode == 1 and "--overwrite" in out.stderr
    out = cli("export", str(demo_ws), str(tmp_path / "y.parquet"), "--dataset", "tablets", "--overwrite",
              "--fold", "avg")
    assert out.returncode == 0, out.stderr
    assert sorted(set(os.listdir(tmp_path)) - {"ws"}) == ["y.parquet"]


@pytest.mark.parametrize("fmt", ["folder"])
def test_cli_folder(demo_ws: Path, tmp_path: Path, fmt: str) -> None:
    out = cli("export", str(demo_ws), str(tmp_path / "d"), "--format", fmt)
    assert out.returncode == 0, out.stderr
    assert "exported" in out.stdout and "left out: 4 deleted" in out.stdout
    assert len(list((tmp_path / "d").glob("*.parquet"))) == 3
