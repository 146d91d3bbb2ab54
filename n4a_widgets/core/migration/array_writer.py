"""One dataset's array file written in streamed row groups, the way nirs4all would write it.

``ArrayStore.save_batch`` reads and rewrites the whole dataset file on every
call, so converting a large legacy dataset batch by batch costs memory that
grows with the dataset and time that grows with its square.  The migration
writes the same rows instead as row groups of one file: the rows are encoded
by nirs4all's own ``_records_to_table``, in nirs4all's schema, with its
compression, under the name nirs4all gives the dataset's file (all reached
through ``core/nirs4all_api.py``).  The file is built under a temporary name in
staging and renamed when complete.  ``verify`` then reads every value back and
``tests/test_nirs4all_adapter.py`` checks that ``ArrayStore`` reads such a file
exactly like one written by ``save_batch``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from .. import nirs4all_api as n4


class StreamedArrayFile:
    """Append ``save_batch``-style records of ONE dataset as row groups; ``close()`` publishes the file."""

    def __init__(self, root: Path, dataset_name: str) -> None:
        import pyarrow.parquet as pq

        self._pq = pq
        self.arrays = n4.array_store(root)
        self.path = n4.array_file_path(root, dataset_name)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.name + ".n4a-tmp")
        self.dataset_name = dataset_name
        self.labels = False
        self._writer: Any = None
        self.rows = 0

    def _open(self, labels: bool) -> None:
        schema = n4.array_file_schema(labels=labels)
        self._writer = self._pq.ParquetWriter(self.tmp, schema, **n4.array_write_options())
        self.labels = labels

    def write(self, records: list[dict[str, Any]]) -> None:
        """One row group of records (all of this dataset), in the order given."""
        if not records:
            return
        if any(r["dataset_name"] != self.dataset_name for r in records):
            raise ValueError("StreamedArrayFile: a record of another dataset")
        table = n4.array_records_to_table(self.arrays, records)
        labels = "y_true_labels" in table.schema.names
        if self._writer is None:
            self._open(labels)
        elif labels and not self.labels:
            self._upgrade_to_labels()
        table = n4.align_array_table(table, n4.array_file_schema(labels=self.labels))
        self._writer.write_table(table)
        self.rows += table.num_rows

    def _upgrade_to_labels(self) -> None:
        """Typed labels appeared mid-file: rewrite the row groups so far in the label schema (streamed)."""
        self._writer.close()
        old = self.tmp.with_name(self.tmp.name + ".old")
        os.replace(self.tmp, old)
        self._open(True)
        schema = n4.array_file_schema(labels=True)
        source = self._pq.ParquetFile(old)
        for i in range(source.num_row_groups):
            self._writer.write_table(n4.align_array_table(source.read_row_group(i), schema))
        old.unlink()

    def close(self) -> None:
        """Finish the file and rename it to nirs4all's name for the dataset."""
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()
