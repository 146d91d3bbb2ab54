"""Build large, real, current-format nirs4all workspaces for benchmarks.

Everything is written through nirs4all's own write API (``WorkspaceStore``:
``begin_run``, ``begin_pipeline``, ``save_chain``, ``save_prediction`` inside
``transaction()``, then ``array_store.save_batch`` for the arrays,
``complete_pipeline``/``complete_run``) — never hand-written SQLite rows or
Parquet — so the result is exactly what nirs4all itself would leave on disk,
only faster than ``nirs4all.run`` (no models are fitted).

Shape of the workspace (deterministic for a given ``seed``):

- ``n_datasets`` datasets, one run each; names include a space and a dot so the
  array files carry nirs4all's sanitized names, as users' workspaces do;
- per dataset, pipelines of three chains (one model each: PLS, Ridge, RF;
  classification uses LogReg/RF/SVC), each chain with folds ``0 1 2 avg w_avg``
  × partitions ``train val test`` (15 predictions a chain), like a 3-fold
  ``nirs4all.run``; the last chain of a dataset may be partial so the total is
  exactly ``n_predictions``;
- each prediction has ``y_true``/``y_pred`` arrays of ``n_samples`` values and
  rmse (or accuracy) scores computed from them.

Chain summaries (``bulk_update_chain_summaries``) are skipped by default: at
100k predictions SQLite plans its query badly (minutes).  ``with_summaries=True``
runs ``PRAGMA analysis_limit=1000; ANALYZE`` first, then the summaries.

CLI::

    python bench/workspace_factory.py N OUT [--datasets 4] [--samples 50] [--seed 0]
                                          [--summaries] [--tasks regression,classification] [--cached]

``cached_workspace(n)`` builds once under ``~/.cache/n4a_bench/<key>`` (or
``$N4A_BENCH_CACHE``) and hands every caller a fresh copy (benchmarks mutate).

Scale workspaces (issue 14): ``scale_workspace(n)`` / ``scale_master(n)`` /
``--scale`` use ``SCALE_SHAPE`` — 8 datasets of 40-sample predictions with chain
summaries (125,000 predictions a dataset at 1M, like the issue's measurement).
The benchmarks compare 100k and 1M of this same shape::

    python bench/workspace_factory.py 1000000 --scale --build-cache   # build once (minutes)
    python bench/workspace_factory.py 1000000 OUT --scale --cached    # a private copy
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: Bump when the generated shape changes, so cached workspaces are rebuilt.
FACTORY_VERSION = 1

FOLDS = ("0", "1", "2", "avg", "w_avg")
PARTITIONS = ("train", "val", "test")
PER_CHAIN = len(FOLDS) * len(PARTITIONS)
CHAINS_PER_PIPELINE = 3
#: Predictions per ``transaction()`` + ``save_batch`` round, per dataset.
BATCH = 5000
N_FEATURES = 200

DATASET_NAMES = ("corn moisture", "wheat.protein v2", "tablets", "soil_carbon", "milk fat", "pharma.api")

MODELS = {
    "regression": (
        ("PLSRegression", "sklearn.cross_decomposition._pls.PLSRegression"),
        ("Ridge", "sklearn.linear_model._ridge.Ridge"),
        ("RandomForestRegressor", "sklearn.ensemble._forest.RandomForestRegressor"),
    ),
    "classification": (
        ("LogisticRegression", "sklearn.linear_model._logistic.LogisticRegression"),
        ("RandomForestClassifier", "sklearn.ensemble._forest.RandomForestClassifier"),
        ("SVC", "sklearn.svm._classes.SVC"),
    ),
}
PREPROCESSINGS = ("MinMaxScaler", "SNV>SavGol", "StandardScaler>Detrend", "MSC")

Progress = Callable[[float, str], None]

#: Issue 14's scale shape: 8 datasets, 40 samples a prediction, chain summaries filled.
SCALE_SHAPE: dict[str, Any] = {"n_datasets": 8, "n_samples": 40, "with_summaries": True}
#: The sizes every scale benchmark compares (growth 100k -> 1M).
SCALE_SIZES = (100_000, 1_000_000)


def dataset_names(n_datasets: int) -> list[str]:
    """The dataset names a factory workspace of ``n_datasets`` uses (in order)."""
    names = list(DATASET_NAMES[:n_datasets])
    names += [f"dataset_{i:02d}" for i in range(len(names), n_datasets)]
    return names


def split_counts(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal non-negative integers (first ones larger)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _scores_regression(y_true: Any, y_pred: Any) -> dict[str, float]:
    import numpy as np

    err = y_pred - y_true
    mse = float(np.mean(err * err))
    var = float(np.var(y_true)) or 1.0
    return {"rmse": mse**0.5, "mse": mse, "mae": float(np.mean(np.abs(err))), "r2": 1.0 - mse / var}


def _scores_classification(y_true: Any, y_pred: Any) -> dict[str, float]:
    import numpy as np

    acc = float(np.mean(y_true == y_pred))
    return {"accuracy": acc, "balanced_accuracy": acc}


def _chain_rows(
    rng: Any, task: str, n_samples: int, quality: float
) -> Iterator[tuple[str, str, dict[str, dict[str, float]], Any, Any]]:
    """Per (fold, partition): (fold, partition, {partition: scores} of that fold, y_true, y_pred)."""
    import numpy as np

    for fold in FOLDS:
        arrays: dict[str, tuple[Any, Any]] = {}
        scores: dict[str, dict[str, float]] = {}
        for part, noise in zip(PARTITIONS, (0.6, 1.0, 1.1), strict=True):
            if task == "classification":
                y_true = rng.integers(0, 3, n_samples).astype(np.int64)
                flip = rng.random(n_samples) < min(0.9, 0.15 * quality * noise)
                y_pred = np.where(flip, (y_true + 1) % 3, y_true)
                scores[part] = _scores_classification(y_true, y_pred)
            else:
                y_true = rng.normal(10.0, 2.0, n_samples)
                y_pred = y_true + rng.normal(0.0, 0.3 * quality * noise, n_samples)
                scores[part] = _scores_regression(y_true, y_pred)
            arrays[part] = (y_true, y_pred)
        for part in PARTITIONS:
            yield fold, part, scores, arrays[part][0], arrays[part][1]


def build_large_workspace(
    path: Path,
    n_predictions: int,
    *,
    n_datasets: int = 4,
    n_samples: int = 50,
    seed: int = 0,
    with_summaries: bool = False,
    tasks: tuple[str, ...] = ("regression",),
    progress: Progress | None = None,
) -> Path:
    """Create a real nirs4all workspace at ``path`` with exactly ``n_predictions`` predictions.

    ``path`` must not exist or be an empty folder.  Datasets cycle through
    ``tasks`` ("regression", "classification").  Returns ``path``.
    """
    import numpy as np
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    if n_predictions < 0 or n_datasets < 1 or n_samples < 1:
        raise ValueError("n_predictions >= 0, n_datasets >= 1 and n_samples >= 1 are required")
    for task in tasks:
        if task not in MODELS:
            raise ValueError(f"unknown task {task!r}; use one of {sorted(MODELS)}")
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path} exists and is not empty; pick a new folder")
    logging.getLogger("nirs4all").setLevel(logging.WARNING)

    rng = np.random.default_rng(seed)
    names = dataset_names(n_datasets)
    counts = split_counts(n_predictions, n_datasets)
    done = 0
    chain_ids: list[str] = []
    store = WorkspaceStore(path)
    try:
        for ds_index, (name, target) in enumerate(zip(names, counts, strict=True)):
            task = tasks[ds_index % len(tasks)]
            metric = "accuracy" if task == "classification" else "rmse"
            models = MODELS[task]
            run_id = store.begin_run(
                f"bench_{ds_index}",
                config={"cv": "KFold(3)", "metric": metric, "generated_by": "n4a_widgets bench factory"},
                datasets=[{"name": name, "path": f"bench/{name}", "n_samples": n_samples, "n_features": N_FEATURES}],
            )
            written = 0
            pipeline_index = 0
            pending: list[dict[str, Any]] = []
            pipelines: list[tuple[str, float, float]] = []
            while written < target:
                prep = PREPROCESSINGS[pipeline_index % len(PREPROCESSINGS)]
                pipeline_id = store.begin_pipeline(
                    run_id,
                    f"{pipeline_index:04d}_{prep.lower().replace('>', '_')}",
                    expanded_config=[{"preprocessing": prep}, {"split": "KFold(3)"}, {"model": "..."}],
                    generator_choices=[{"_or_": prep}],
                    dataset_name=name,
                    dataset_hash=hashlib.sha1(name.encode()).hexdigest()[:16],
                )
                best: tuple[float, float] | None = None
                for model_index, (model_name, model_class) in enumerate(models):
                    if written >= target:
                        break
                    chain_id = store.save_chain(
                        pipeline_id,
                        steps=[
                            {
                                "step_idx": 0,
                                "operator_class": prep,
                                "params": {},
                                "artifact_id": None,
                                "stateless": False,
                            },
                            {
                                "step_idx": 1,
                                "operator_class": model_class,
                                "params": {},
                                "artifact_id": None,
                                "stateless": False,
                            },
                        ],
                        model_step_idx=1,
                        model_class=model_class,
                        preprocessings=prep,
                        fold_strategy="per_fold",
                        fold_artifacts={},
                        shared_artifacts={},
                        dataset_name=name,
                    )
                    chain_ids.append(chain_id)
                    quality = 0.5 + model_index * 0.3 + float(rng.random())
                    for fold, part, scores, y_true, y_pred in _chain_rows(rng, task, n_samples, quality):
                        if written >= target:
                            break
                        val, test, train = (scores[p][metric] for p in ("val", "test", "train"))
                        pending.append(
                            {
                                "pipeline_id": pipeline_id,
                                "chain_id": chain_id,
                                "model_name": model_name,
                                "model_class": model_class,
                                "fold_id": fold,
                                "partition": part,
                                "val": val,
                                "test": test,
                                "train": train,
                                "scores": scores,
                                "prep": prep,
                                "y_true": y_true,
                                "y_pred": y_pred,
                            }
                        )
                        written += 1
                        if best is None or val < best[0]:
                            best = (val, test)
                    if len(pending) >= BATCH:
                        _flush(store, pending, name, task, metric, n_samples)
                        done += len(pending)
                        pending = []
                        if progress is not None:
                            progress(done / max(n_predictions, 1), f"{done}/{n_predictions} predictions")
                pipelines.append((pipeline_id, *(best or (0.0, 0.0))))
                pipeline_index += 1
            if pending:
                _flush(store, pending, name, task, metric, n_samples)
                done += len(pending)
                if progress is not None:
                    progress(done / max(n_predictions, 1), f"{done}/{n_predictions} predictions")
            for pipeline_id, best_val, best_test in pipelines:
                store.complete_pipeline(pipeline_id, best_val, best_test, metric, duration_ms=1000)
            store.complete_run(run_id, {"pipelines": len(pipelines), "predictions": written})
        if with_summaries and chain_ids:
            if progress is not None:
                progress(1.0, f"ANALYZE + chain summaries of {len(chain_ids)} chains")
            conn = store._ensure_open()  # private: nirs4all exposes no ANALYZE; see tests/test_bench_factory.py
            conn.execute("PRAGMA analysis_limit=1000")
            conn.execute("ANALYZE")
            # One call per slice keeps the temp table and its aggregation small at 1M.
            for start in range(0, len(chain_ids), 20_000):
                store.bulk_update_chain_summaries(chain_ids[start : start + 20_000])
    finally:
        store.close()
    return path


def _flush(store: Any, pending: list[dict[str, Any]], name: str, task: str, metric: str, n_samples: int) -> None:
    """One transaction of ``save_prediction`` calls plus one ``save_batch`` (as ``Predictions.flush`` does)."""
    records: list[dict[str, Any]] = []
    with store.transaction():
        for row in pending:
            pid = store.save_prediction(
                pipeline_id=row["pipeline_id"],
                chain_id=row["chain_id"],
                dataset_name=name,
                model_name=row["model_name"],
                model_class=row["model_class"],
                fold_id=row["fold_id"],
                partition=row["partition"],
                val_score=row["val"],
                test_score=row["test"],
                train_score=row["train"],
                metric=metric,
                task_type=task,
                n_samples=n_samples,
                n_features=N_FEATURES,
                scores=row["scores"],
                best_params={},
                branch_id=None,
                branch_name=None,
                exclusion_count=0,
                exclusion_rate=0.0,
                preprocessings=row["prep"],
            )
            records.append(
                {
                    "prediction_id": pid,
                    "dataset_name": name,
                    "model_name": row["model_name"],
                    "fold_id": row["fold_id"],
                    "partition": row["partition"],
                    "metric": metric,
                    "val_score": row["val"],
                    "task_type": task,
                    "y_true": row["y_true"],
                    "y_pred": row["y_pred"],
                    "y_proba": None,
                    "X": None,
                    "spectra": None,
                    "sample_indices": None,
                    "weights": None,
                    "sample_metadata": None,
                    "result_metadata": None,
                }
            )
        store.array_store.save_batch(records)


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------


def cache_root() -> Path:
    """``$N4A_BENCH_CACHE`` or ``~/.cache/n4a_bench``."""
    env = os.environ.get("N4A_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "n4a_bench"


def cache_key(n_predictions: int, **kw: Any) -> str:
    """A readable, stable key for one factory configuration and nirs4all version."""
    from importlib.metadata import version

    params = {
        "n_datasets": 4,
        "n_samples": 50,
        "seed": 0,
        "with_summaries": False,
        "tasks": ("regression",),
        **kw,
    }
    params["tasks"] = list(params["tasks"])
    blob = json.dumps(
        {"n": n_predictions, "v": FACTORY_VERSION, "nirs4all": version("nirs4all"), **params}, sort_keys=True
    )
    return f"ws{n_predictions}_{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


@contextlib.contextmanager
def _cache_lock(lock_path: Path) -> Iterator[None]:
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def cached_master(n_predictions: int, progress: Progress | None = None, **kw: Any) -> Path:
    """The shared cached build (do NOT modify it); built on first use, safe across processes."""
    root = cache_root()
    key = cache_key(n_predictions, **kw)
    master = root / key
    with _cache_lock(root / f"{key}.lock"):
        if not (master / ".complete").exists():
            staging = root / f"{key}.building"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(master, ignore_errors=True)
            t0 = time.perf_counter()
            build_large_workspace(staging / "ws", n_predictions, progress=progress, **kw)
            (staging / ".complete").write_text(f"{time.perf_counter() - t0:.1f}s\n")
            staging.rename(master)
    return master / "ws"


def cached_workspace(n_predictions: int, dest: Path | None = None, **kw: Any) -> Path:
    """A fresh private copy of the cached workspace (built once); ``dest`` defaults to a new temp dir.

    The caller owns the copy and removes it (``shutil.rmtree(path.parent)`` for the default temp dir).
    """
    master = cached_master(n_predictions, **kw)
    if dest is None:
        dest = Path(tempfile.mkdtemp(prefix=f"n4a_bench_{n_predictions}_")) / "ws"
    shutil.copytree(master, dest)
    return dest


def scale_master(n_predictions: int, progress: Progress | None = None) -> Path:
    """The cached scale workspace (``SCALE_SHAPE``) of ``n_predictions``; do NOT modify it."""
    return cached_master(n_predictions, progress=progress, **SCALE_SHAPE)


def scale_workspace(n_predictions: int, dest: Path | None = None) -> Path:
    """A private copy of the cached scale workspace (``SCALE_SHAPE``); the caller removes it."""
    return cached_workspace(n_predictions, dest, **SCALE_SHAPE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a large real nirs4all workspace for benchmarks.")
    parser.add_argument("n_predictions", type=int)
    parser.add_argument("out", type=Path, nargs="?", help="output folder (not needed with --build-cache)")
    parser.add_argument("--datasets", type=int, default=4)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summaries", action="store_true", help="also run bulk_update_chain_summaries")
    parser.add_argument("--tasks", default="regression", help="comma list: regression,classification")
    parser.add_argument("--cached", action="store_true", help="copy the cached build into OUT (build it once)")
    parser.add_argument("--build-cache", action="store_true", help="only make sure the cached build exists")
    parser.add_argument("--scale", action="store_true", help="issue 14's shape: 8 datasets, 40 samples, summaries")
    args = parser.parse_args(argv)
    if args.out is None and not args.build_cache:
        parser.error("OUT is required unless --build-cache is given")
    t0 = time.perf_counter()
    kw: dict[str, Any] = {
        "n_datasets": args.datasets,
        "n_samples": args.samples,
        "seed": args.seed,
        "with_summaries": args.summaries,
        "tasks": tuple(args.tasks.split(",")),
    }
    if args.scale:
        kw.update(SCALE_SHAPE)

    def show(fraction: float, message: str) -> None:
        print(f"\r  {fraction:5.1%} {message}   ", end="", file=sys.stderr, flush=True)

    if args.build_cache:
        master = cached_master(args.n_predictions, progress=show, **kw)
        print(file=sys.stderr)
        print(f"cached {args.n_predictions} predictions at {master} ({time.perf_counter() - t0:.1f} s)")
        return 0
    if args.cached:
        cached_workspace(args.n_predictions, dest=args.out, **kw)
        print(f"copied cached {args.n_predictions} predictions to {args.out} in {time.perf_counter() - t0:.1f} s")
        return 0

    build_large_workspace(args.out, args.n_predictions, progress=show, **kw)
    print(file=sys.stderr)
    print(f"built {args.n_predictions} predictions in {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
