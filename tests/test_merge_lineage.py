"""Merged predictions keep a replayable lineage; a merge never deletes a model a surviving chain needs.

Every test here replays chains with nirs4all's own ``nirs4all.predict(chain_id=..., data=X,
workspace_path=...)`` on workspaces made by real ``nirs4all.run`` calls (regression and
classification), with folder and ``.zip`` sources and every strategy.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest

from n4a_widgets import Workspace
from n4a_widgets.core import merge as merge_mod
from n4a_widgets.core.errors import InvalidArgumentError, UnsupportedFormatError

STRATEGIES = ("keep_best", "keep_existing", "overwrite")


@pytest.fixture(scope="session")
def lineage_masters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``a``: wheat, tablets (classification), corn (2 models); ``b``: wheat and corn (other samples: conflicts)."""
    from n4a_widgets.demo import run_dataset

    root = tmp_path_factory.mktemp("lineage_masters")
    plan = {
        "a": [("wheat", "regression", 100, 1, 1), ("tablets", "classification", 120, 2, 1),
              ("corn", "regression", 90, 3, 2)],
        "b": [("wheat", "regression", 130, 1, 1), ("corn", "regression", 110, 0, 1)],
    }
    for name, runs in plan.items():
        for ds, task, n, seed, models in runs:
            run_dataset(root / name, ds, task, n, seed, n_models=models)
    return {name: root / name for name in plan}


@pytest.fixture
def ws(lineage_masters: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, src in lineage_masters.items():
        shutil.copytree(src, tmp_path / name)
        out[name] = tmp_path / name
    return out


def zip_workspace(folder: Path, dest: Path, *, prefix: str = "workspace") -> Path:
    """A zip like nirs4all-cluster's ``workspace.zip``: the workspace folder one level down."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith(".n4a_widgets"):
                zf.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}" if prefix else
                         path.relative_to(folder).as_posix())
    return dest


_X = None


def features() -> np.ndarray:
    global _X
    if _X is None:
        import nirs4all

        _X = nirs4all.generate.regression(n_samples=25, random_state=11).x({})
    return _X


def replay(root: Path, chain_id: str) -> np.ndarray:
    import nirs4all

    with contextlib.redirect_stdout(io.StringIO()):
        result = nirs4all.predict(chain_id=chain_id, data=features(), workspace_path=str(root), verbose=0)
    return np.asarray(result.y_pred)


def rows(root: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"{(root / 'store.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def replays_by_prediction(root: Path) -> dict[str, np.ndarray]:
    """{prediction id: replay of its chain} for every prediction of ``root`` (a chain replayed once)."""
    cache: dict[str, np.ndarray] = {}
    out: dict[str, np.ndarray] = {}
    if not (root / "store.sqlite").exists():
        return out
    for pid, cid in rows(root, "SELECT prediction_id, chain_id FROM predictions"):
        if cid not in cache:
            cache[cid] = replay(root, cid)
        out[pid] = cache[cid]
    return out


def source_chain_of_new_ids(target: Path, sources: list[Path], strategy: str) -> dict[str, tuple[int, str]]:
    plan = merge_mod.build_plan(target, sources, strategy, None)
    return {nid: (si, row["chain_id"]) for si, b in ((b.source_index, b) for b in plan.batches) for row, nid in b.adds}


def check_merge_replays(target: Path, sources: list[Path], replay_roots: list[Path], strategy: str) -> None:
    """Execute a merge; every merged prediction replays as in its source; no surviving prediction lost its model."""
    before = replays_by_prediction(target)
    new_ids = source_chain_of_new_ids(target, sources, strategy)
    w = Workspace(target)
    preview = w.merge(sources, on_conflict=strategy)
    done = w.merge(sources, on_conflict=strategy, dry_run=False, plan_id=preview.plan_id)
    assert done.added == preview.added
    after = replays_by_prediction(target)
    merged = [pid for pid in after if pid in new_ids]
    assert len(merged) == done.added - (done.removed - len(set(done.prediction_ids) & set(before)))
    if strategy != "keep_existing":
        assert merged, "the fixture must merge something"
    src_cache: dict[tuple[int, str], np.ndarray] = {}
    for pid in merged:
        key = new_ids[pid]
        if key not in src_cache:
            src_cache[key] = replay(replay_roots[key[0]], key[1])
        np.testing.assert_array_equal(after[pid], src_cache[key])
    # no merge reduces the set of replayable chains of the target's surviving predictions
    for pid, y in before.items():
        if pid in after:
            np.testing.assert_array_equal(after[pid], y)
    assert set(before) - set(after) == set(done.prediction_ids) & set(before)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_merged_chains_replay_as_in_their_source_folder(ws: dict[str, Path], strategy: str) -> None:
    check_merge_replays(ws["b"], [ws["a"]], [ws["a"]], strategy)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_merged_chains_replay_as_in_their_source_archive(ws: dict[str, Path], tmp_path: Path, strategy: str) -> None:
    archive = zip_workspace(ws["a"], tmp_path / "workspace.zip")
    check_merge_replays(ws["b"], [archive], [ws["a"]], strategy)


def test_archive_at_the_root_and_two_sources_with_classification(ws: dict[str, Path], tmp_path: Path) -> None:
    archive = zip_workspace(ws["b"], tmp_path / "b.zip", prefix="")
    target = tmp_path / "fresh"
    target.mkdir()
    check_merge_replays(target, [ws["a"], archive], [ws["a"], ws["b"]], "keep_best")
    tasks = {r[0] for r in rows(target, "SELECT DISTINCT task_type FROM predictions")}
    assert tasks == {"regression", "classification"}


def test_overwrite_of_a_copy_into_itself_keeps_every_model(ws: dict[str, Path], tmp_path: Path) -> None:
    """Reproduces the data loss: overwrite-merging a copy of a workspace into it deleted all its artifacts."""
    target = ws["a"]
    copy = tmp_path / "a_copy"
    shutil.copytree(target, copy)
    files_before = sorted(p.relative_to(target) for p in (target / "artifacts").rglob("*") if p.is_file())
    assert files_before
    w = Workspace(target)
    preview = w.merge([copy], on_conflict="overwrite")
    assert preview.removed == preview.added > 0
    assert preview.artifacts_removed == 0 and preview.artifact_bytes_removed == 0
    assert preview.artifacts_added == 0 and preview.artifact_bytes_added == 0  # same content: reused
    assert preview.chains_removed == preview.chains_added > 0
    w.merge([copy], on_conflict="overwrite", dry_run=False, plan_id=preview.plan_id)
    files_after = sorted(p.relative_to(target) for p in (target / "artifacts").rglob("*") if p.is_file())
    assert files_after == files_before
    assert rows(target, "SELECT count(*) FROM artifacts")[0][0] > 0
    for _pid, y in replays_by_prediction(target).items():
        assert y.size
    check_merge_replays(target, [copy], [copy], "overwrite")  # and again: still nothing lost


def test_merging_the_same_source_twice_adds_no_model_bytes(ws: dict[str, Path]) -> None:
    w = Workspace(ws["b"])
    first = w.merge([ws["a"]], on_conflict="overwrite")
    assert first.artifacts_added > 0 and first.artifact_bytes_added > 0
    w.merge([ws["a"]], on_conflict="overwrite", dry_run=False, plan_id=first.plan_id)
    size = sum(p.stat().st_size for p in (ws["b"] / "artifacts").rglob("*") if p.is_file())
    second = w.merge([ws["a"]], on_conflict="overwrite")
    assert second.added > 0 and second.artifacts_added == 0 and second.artifact_bytes_added == 0
    w.merge([ws["a"]], on_conflict="overwrite", dry_run=False, plan_id=second.plan_id)
    assert sum(p.stat().st_size for p in (ws["b"] / "artifacts").rglob("*") if p.is_file()) == size


def test_preview_lists_chains_and_models_added_and_removed(ws: dict[str, Path]) -> None:
    w = Workspace(ws["b"])
    preview = w.merge([ws["a"]], on_conflict="overwrite")
    d = preview.to_dict()
    added = [c for c in d["chain_changes"] if c["change"] == "added"]
    removed = [c for c in d["chain_changes"] if c["change"] == "removed"]
    assert len(added) == preview.chains_added > 0 and len(removed) == preview.chains_removed > 0
    assert {c["dataset"] for c in added} == {"wheat", "tablets", "corn"}
    assert {c["dataset"] for c in removed} == {"wheat"}
    assert all(c["model_class"] for c in added + removed)
    arts = [a for a in d["artifact_changes"] if a["change"] == "added"]
    assert len(arts) == preview.artifacts_added and sum(a["size_bytes"] for a in arts) == preview.artifact_bytes_added
    gone = [a for a in d["artifact_changes"] if a["change"] == "removed"]
    assert len(gone) == preview.artifacts_removed > 0  # b's replaced wheat models are no longer named by any chain
    ids_before = {r[0] for r in rows(ws["b"], "SELECT artifact_id FROM artifacts")}
    done = w.merge([ws["a"]], on_conflict="overwrite", dry_run=False, plan_id=preview.plan_id)
    ids_after = {r[0] for r in rows(ws["b"], "SELECT artifact_id FROM artifacts")}
    assert ids_before - ids_after == {a["artifact_id"] for a in gone}
    assert {a["artifact_id"] for a in arts} <= ids_after
    assert done.to_dict() | {"dry_run": True} == d


def test_write_context_hooks_see_what_the_merge_replaces_and_adds(
    ws: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from n4a_widgets.core import write_op

    seen: dict[str, object] = {}
    calls: list[list[str]] = []

    def before_delete(self: write_op.WriteContext, store: object, ids: list[str]) -> None:
        remaining = rows(ws["b"], "SELECT count(*) FROM predictions")  # called before the delete
        calls.append(list(ids))
        seen["ctx"] = self
        seen["count"] = remaining

    monkeypatch.setattr(write_op.WriteContext, "before_delete", before_delete)
    before = {r[0] for r in rows(ws["b"], "SELECT prediction_id FROM predictions")}
    w = Workspace(ws["b"])
    preview = w.merge([ws["a"]], on_conflict="overwrite")
    w.merge([ws["a"]], on_conflict="overwrite", dry_run=False, plan_id=preview.plan_id)
    ctx = seen["ctx"]
    assert isinstance(ctx, write_op.WriteContext)
    deleted = sorted(i for c in calls for i in c)
    assert deleted == sorted(ctx.removed_ids) == sorted(set(preview.prediction_ids) & before)
    after = {r[0] for r in rows(ws["b"], "SELECT prediction_id FROM predictions")}
    assert set(ctx.added_ids) == after - before and len(ctx.added_ids) == preview.added


# ------------------------------------------------------------------ archives, safely


def _zip(dest: Path, members: dict[str, bytes], *, symlink: str | None = None, twice: str | None = None) -> Path:
    import warnings

    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if twice is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Duplicate name": exactly what this archive is about
                zf.writestr(twice, b"second copy")
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return dest


def _workspace_members(folder: Path, prefix: str = "ws/") -> dict[str, bytes]:
    return {prefix + p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".n4a_widgets")}


def _temp_folders() -> set[str]:
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("n4a-merge-src-*")}


@pytest.mark.parametrize(
    "kind", ["traversal", "absolute", "symlink", "bomb", "not_a_workspace", "two_workspaces", "duplicate"],
)
def test_unsafe_or_wrong_archives_are_refused_and_nothing_is_written(
    ws: dict[str, Path], tmp_path: Path, kind: str,
) -> None:
    members = _workspace_members(ws["a"])
    symlink = twice = None
    if kind == "duplicate":
        twice = "ws/store.sqlite"
    elif kind == "traversal":
        members["ws/../../escaped.txt"] = b"x"
    elif kind == "absolute":
        members["/tmp/escaped.txt"] = b"x"
    elif kind == "symlink":
        symlink = "ws/artifacts/link"
    elif kind == "bomb":
        members["ws/arrays/huge.bin"] = b"\0" * (8 << 20)  # 8 MiB of zeros: ratio ~1000:1
    elif kind == "not_a_workspace":
        members = {"notes/readme.txt": b"hello", "data.csv": b"1,2,3"}
    elif kind == "two_workspaces":
        members |= _workspace_members(ws["b"], "other/")
    archive = _zip(tmp_path / f"{kind}.zip", members, symlink=symlink, twice=twice)
    target = ws["b"]
    before = {p: p.stat().st_mtime_ns for p in target.rglob("*")}
    temps = _temp_folders()
    with pytest.raises(InvalidArgumentError) as err:
        Workspace(target).merge([archive])
    assert "it was not merged" in str(err.value)
    with pytest.raises(InvalidArgumentError):
        merge_mod.check_source(target, archive)
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/escaped.txt").exists()
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*")} == before
    assert _temp_folders() == temps  # the private extraction folder is gone


def test_zip_bomb_limits_on_total_and_member_size(ws: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from n4a_widgets.core.merge import archives

    archive = zip_workspace(ws["a"], tmp_path / "w.zip")
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(InvalidArgumentError, match="expands to"):
        Workspace(ws["b"]).merge([archive])
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 1 << 40)
    monkeypatch.setattr(archives, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(InvalidArgumentError, match="has a member of"):
        Workspace(ws["b"]).merge([archive])


def test_archive_sources_leave_no_temporary_folder_and_a_legacy_archive_is_refused(
    ws: dict[str, Path], tmp_path: Path, legacy_copy,
) -> None:
    temps = _temp_folders()
    archive = zip_workspace(ws["a"], tmp_path / "workspace.zip")
    preview = Workspace(ws["b"]).merge([archive])
    assert preview.sources[0].archive and preview.sources[0].name == "workspace" and preview.added > 0
    Workspace(ws["b"]).merge([archive], dry_run=False, plan_id=preview.plan_id)
    assert _temp_folders() == temps
    legacy = zip_workspace(legacy_copy("v0_8_11_sqlite"), tmp_path / "legacy.zip")
    with pytest.raises(UnsupportedFormatError, match="legacy"):
        merge_mod.check_source(ws["b"], legacy)
    assert _temp_folders() == temps
    info = merge_mod.check_source(ws["b"], archive)
    assert info["archive"] and info["predictions"] > 0 and "wheat" in info["datasets"]
