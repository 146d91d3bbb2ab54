"""Benchmark ``Workspace.export`` against the plain paths, in the same run.

Variants (each in its own subprocess, so peak RSS is that variant's own):

- ``copy``        shutil.copyfile of the dataset's array file (the physical limit)
- ``load_write``  nirs4all ``ArrayStore.load_dataset(name)`` + polars ``write_parquet`` (no filtering)
- ``load_filter_write``  the same + a polars filter on partition (what a user would write by hand)
- ``export``      ``Workspace.export`` unfiltered (fast path: column chunks copied, metadata appended)
- ``export_val``  ``Workspace.export(partition="val")`` (streaming rewrite)
- ``zip_all``     ``Workspace.export`` of every dataset, filtered, into one zip

Peak memory is the rise of VmHWM over VmRSS after the imports (Linux resets
VmHWM through /proc/self/clear_refs), so import peaks do not hide it.

Times measure the call, not imports: every child imports the same modules
first (nirs4all's array store, polars, pyarrow, ours with its ADBC SQLite driver) and makes one tiny
``pa.array`` from a Python list, which loads pyarrow's lazily imported pandas
layer (~1.3 ms, once per process, in every program that builds an Arrow array
from Python values).  The runs of the variants are interleaved (round robin)
and medians reported, so a burst of load on a shared machine hits all
variants alike.

    python bench/bench_export.py [--predictions 8000] [--samples 2000] [--repeat 3]   # few long predictions
    python bench/bench_export.py --scale 1000000 [--variants ...]                   # many short ones (125k x 40)

Workspaces come from ``bench/workspace_factory.py`` (cached under
``~/.cache/n4a_bench``).  Prints time ratios and peak memory; no assertions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, shutil, sys, time
import polars as pl
import pyarrow.parquet as pq
from nirs4all.pipeline.storage.array_store import ArrayStore
import pyarrow as pa
import n4a_widgets.core.export, n4a_widgets.core.parquet_splice, n4a_widgets.core.status
from n4a_widgets.core.readonly_sqlite import import_adbc; import_adbc()  # the metadata reader's driver
from n4a_widgets import Workspace
pa.array(["warm"])  # pyarrow imports its pandas layer on the first array built from Python values

def status_kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

ws, variant, dataset, out = sys.argv[1:5]
source = ArrayStore(ws, read_only=True)._parquet_path(dataset)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status_kb("VmRSS")
t0 = time.perf_counter()
if variant == "copy":
    shutil.copyfile(source, out)
elif variant == "load_write":
    ArrayStore(ws, read_only=True).load_dataset(dataset).write_parquet(out)
elif variant == "load_filter_write":
    df = ArrayStore(ws, read_only=True).load_dataset(dataset)
    df.filter(pl.col("partition") == "val").write_parquet(out)
elif variant == "export":
    Workspace(ws).export(out, datasets=[dataset])
elif variant == "export_val":
    Workspace(ws).export(out, datasets=[dataset], partition="val")
elif variant == "zip_all":
    Workspace(ws).export(out, partition="val", format="zip")
else:
    raise SystemExit("unknown variant " + variant)
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "peak_bytes": (status_kb("VmHWM") - base) * 1024}))
"""

VARIANTS = ("copy", "load_write", "load_filter_write", "export", "export_val", "zip_all")


def run_variant(ws: Path, variant: str, dataset: str, out_dir: Path) -> dict[str, float]:
    out = out_dir / ("all.zip" if variant == "zip_all" else f"{variant}.parquet")
    if out.exists():
        out.unlink()
    done = subprocess.run([sys.executable, "-c", CHILD, str(ws), variant, dataset, str(out)],
                          capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["out_bytes"] = out.stat().st_size
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=8000, help="predictions in the workspace (4 datasets)")
    parser.add_argument("--samples", type=int, default=2000, help="values per y_true / y_pred array")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (median reported)")
    parser.add_argument("--scale", type=int, default=None, metavar="N",
                        help="use the cached scale workspace of N predictions (8 datasets of 40 samples) instead")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list of variants to run")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    import pyarrow.parquet as pq

    from n4a_widgets.core.arrays_readonly import parquet_path_for

    import workspace_factory  # type: ignore[import-not-found]

    if args.scale:
        ws = workspace_factory.scale_master(args.scale)
        dataset = workspace_factory.dataset_names(workspace_factory.SCALE_SHAPE["n_datasets"])[0]
    else:
        ws = workspace_factory.cached_master(args.predictions, n_samples=args.samples)
        dataset = workspace_factory.dataset_names(4)[0]
    variants = [v for v in args.variants.split(",") if v]
    source = parquet_path_for(ws, dataset)
    md = pq.read_metadata(source)
    decoded = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    all_files = sorted((ws / "arrays").glob("*.parquet"))
    print(f"workspace {ws}")
    print(f"dataset {dataset!r}: {source.stat().st_size / 1e6:.1f} MB on disk, {decoded / 1e6:.1f} MB decoded, "
          f"{md.num_rows} rows, {md.num_row_groups} row group(s); {len(all_files)} datasets, "
          f"largest {max(p.stat().st_size for p in all_files) / 1e6:.1f} MB, "
          f"sum {sum(p.stat().st_size for p in all_files) / 1e6:.1f} MB")

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="n4a_bench_export_") as tmp:
        out_dir = Path(tmp)
        runs: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
        for _ in range(args.repeat):  # round robin: load bursts hit every variant alike
            for variant in variants:
                runs[variant].append(run_variant(ws, variant, dataset, out_dir))
        for variant, done in runs.items():
            results[variant] = {
                "seconds": statistics.median(r["seconds"] for r in done),
                "peak_mb": statistics.median(r["peak_bytes"] for r in done) / 1e6,
                "out_mb": done[-1]["out_bytes"] / 1e6,
            }
    print()
    print(f"{'variant':<19}{'time s':>9}{'peak MB':>10}{'out MB':>9}")
    for variant, r in results.items():
        print(f"{variant:<19}{r['seconds']:>9.3f}{r['peak_mb']:>10.1f}{r['out_mb']:>9.1f}")
    def ratio(a: str, b: str, key: str) -> str:
        if a not in results or b not in results:
            return "n/a"
        return f"{results[a][key] / max(results[b][key], 1e-9):.2f}x"

    print()
    print(f"unfiltered export / file copy          time {ratio('export', 'copy', 'seconds')}   (goal <= 2x)")
    print(f"unfiltered export / load+write         time {ratio('export', 'load_write', 'seconds')}   "
          f"peak {ratio('export', 'load_write', 'peak_mb')}")
    print(f"filtered export / load+filter+write    time {ratio('export_val', 'load_filter_write', 'seconds')}"
          f"   (goal <= 1x)   peak {ratio('export_val', 'load_filter_write', 'peak_mb')}   (goal <= 0.5x)")
    if "zip_all" in results and "export_val" in results:
        print(f"zip of {len(all_files)} datasets (filtered)        peak {results['zip_all']['peak_mb']:.1f} MB vs one "
              f"dataset {results['export_val']['peak_mb']:.1f} MB   (goal: bounded by the largest, not the sum)")
    print(f"decoded size of the dataset: {decoded / 1e6:.1f} MB")
    shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
