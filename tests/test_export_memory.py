"""Peak memory of an export stays bounded as the dataset grows (measured in subprocesses).

Peak RSS is read from /proc (VmHWM, reset after the imports); ``ru_maxrss`` cannot be reset and
the imports of nirs4all/polars peak higher than a small export does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

CHILD = r"""
import json, sys
import pyarrow.parquet as pq
import nirs4all.pipeline.storage.array_store  # imports first: they are not the export's memory
import n4a_widgets.core.export, n4a_widgets.core.parquet_splice, n4a_widgets.core.status
from n4a_widgets.core.readonly_sqlite import import_adbc; import_adbc()  # the metadata reader's driver
from n4a_widgets import Workspace
ws, mode, out = sys.argv[1], sys.argv[2], sys.argv[3]

def status_kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

# Reset the peak (VmHWM) after the imports, whose transient peak would hide ours.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status_kb("VmRSS")
if mode == "read_table":
    pq.read_table(ws + "/arrays/corn_moisture.parquet")
else:
    kwargs = {"partition": "val"} if mode == "filtered" else {}
    Workspace(ws).export(out, datasets=["corn moisture"], overwrite=True, **kwargs)
print(json.dumps((status_kb("VmHWM") - base) * 1024))
"""


def peak_delta(ws: Path, mode: str, out: Path) -> int:
    done = subprocess.run([sys.executable, "-c", CHILD, str(ws), mode, str(out)], capture_output=True, text=True,
                          check=True, timeout=300)
    return int(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def factory():
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to measure peak memory")
    sys.path.insert(0, str(BENCH))
    try:
        import workspace_factory

        yield workspace_factory
    finally:
        sys.path.remove(str(BENCH))


def test_peak_memory_is_bounded_by_batches_not_by_the_file(factory, tmp_path: Path) -> None:
    """Small (~10 MB) and large (~58 MB decoded, > 12 of our row groups) datasets: the export's
    peak grows far less than the decoded file (a fixed ~20-45 MB of pyarrow/allocator buffers
    plus the id column), while reading the file whole grows ~3.5x faster than the file."""
    import pyarrow.parquet as pq

    from n4a_widgets.core.export import ROW_GROUP_BYTES

    sizes = {}
    for label, n in (("small", 300), ("large", 1800)):
        ws = factory.build_large_workspace(tmp_path / label, n, n_datasets=1, n_samples=2000, seed=1)
        md = pq.read_metadata(ws / "arrays" / "corn_moisture.parquet")
        decoded = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
        sizes[label] = {
            "decoded": decoded,
            "read_table": peak_delta(ws, "read_table", tmp_path / "r.parquet"),
            "filtered": peak_delta(ws, "filtered", tmp_path / "f.parquet"),
            "unfiltered": peak_delta(ws, "unfiltered", tmp_path / "u.parquet"),
        }
    small, large = sizes["small"], sizes["large"]
    assert large["decoded"] > 12 * ROW_GROUP_BYTES, sizes
    growth = large["decoded"] - small["decoded"]
    for mode in ("filtered", "unfiltered"):
        # measured 0.33-0.44x of the decoded growth (reading the file whole: 3.5x); 0.5x leaves room for noise
        assert large[mode] - small[mode] < 0.5 * growth, (mode, sizes)
        assert large[mode] < large["read_table"] / 2, (mode, sizes)
    # The file read whole costs at least its decoded size: the measure can see growth.
    assert large["read_table"] - small["read_table"] > 0.8 * growth, sizes
    out = pq.ParquetFile(tmp_path / "f.parquet")
    assert out.metadata.num_row_groups >= 3  # our files are written in small row groups
