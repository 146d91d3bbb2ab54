"""Build a small but realistic demo workspace with real ``nirs4all.run`` calls.

Used by ``make demo`` and by the test fixtures: several datasets (one whose
name has a space and a dot, so its array file name is sanitized), regression
and classification runs, and a few predictions deleted but not yet compacted
(pending tombstones), the state users' workspaces are usually in.

``python -m n4a_widgets.demo PATH [--legacy PATH]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
from pathlib import Path

#: (dataset name, task, samples, seed)
DEMO_DATASETS = (
    ("corn moisture", "regression", 160, 0),
    ("wheat.protein v2", "regression", 140, 1),
    ("tablets", "classification", 150, 2),
)


def _quiet():
    logging.getLogger("nirs4all").setLevel(logging.ERROR)
    return contextlib.redirect_stdout(io.StringIO())


def run_dataset(workspace: Path, name: str, task: str, n_samples: int, seed: int, n_models: int = 2) -> None:
    """One real ``nirs4all.run`` on generated spectra into ``workspace``."""
    import nirs4all
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if task == "classification":
        dataset = nirs4all.generate.classification(n_samples=n_samples, random_state=seed, name=name)
        models = [{"model": LogisticRegression(C=c, max_iter=300)} for c in (0.1, 1.0, 10.0)[:n_models]]
        steps = [StandardScaler(), KFold(n_splits=3, shuffle=True, random_state=seed)]
    else:
        dataset = nirs4all.generate.regression(n_samples=n_samples, random_state=seed, name=name)
        models = [{"model": PLSRegression(k)} for k in (3, 6, 9)[:n_models]]
        steps = [MinMaxScaler(), KFold(n_splits=3, shuffle=True, random_state=seed)]
    with _quiet():
        nirs4all.run(pipeline=[*steps, *models], dataset=dataset, workspace_path=str(workspace), verbose=0)


def delete_some_predictions(workspace: Path, count: int = 4) -> list[str]:
    """Delete ``count`` predictions through nirs4all without compacting.

    Leaves their array rows tombstoned (pending deletion), as nirs4all does
    between automatic compactions.
    """
    from .core.nirs4all_api import open_store, store_connection

    store = open_store(Path(workspace))
    try:
        rows = store_connection(store).execute(
            "SELECT prediction_id FROM predictions WHERE partition = 'val' ORDER BY val_score DESC, prediction_id"
        ).fetchall()
        ids = [str(r[0]) for r in rows][:count]
        for pid in ids:
            store.delete_prediction(pid)
        return ids
    finally:
        store.close()


def build_demo_workspace(path: str | os.PathLike[str], *, fresh: bool = True, pending_deletes: int = 4) -> Path:
    """Create the demo workspace at ``path`` and return it."""
    workspace = Path(path).absolute()
    if fresh and workspace.exists():
        shutil.rmtree(workspace)
    for name, task, n, seed in DEMO_DATASETS:
        run_dataset(workspace, name, task, n, seed)
    if pending_deletes:
        delete_some_predictions(workspace, pending_deletes)
    return workspace


def install_legacy_demo(path: str | os.PathLike[str], fixture: str = "v0_7_1_duckdb_inline") -> Path:
    """Copy a committed legacy fixture (made by a real old release) to ``path``."""
    source = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "legacy" / fixture
    target = Path(path).absolute()
    if not source.is_dir():
        raise FileNotFoundError(f"legacy fixture {fixture} not found at {source}")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", help="where to create the demo workspace (replaced if it exists)")
    parser.add_argument("--legacy", help="also copy a legacy workspace (nirs4all 0.7.1 DuckDB) here")
    args = parser.parse_args(argv)
    ws = build_demo_workspace(args.path)
    print(f"demo workspace: {ws}")
    if args.legacy:
        try:
            print(f"legacy workspace: {install_legacy_demo(args.legacy)}")
        except FileNotFoundError as exc:
            print(f"no legacy workspace: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
