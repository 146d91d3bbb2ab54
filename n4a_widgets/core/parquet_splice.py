"""Append columns to a Parquet file without re-encoding the columns it has.

The export's fast path: when a dataset file needs no row filtered out, its
column chunks are copied byte for byte (``os.copy_file_range``, no decoding)
and the metadata columns from SQLite — encoded separately by pyarrow with the
same row-group boundaries — are placed after them; a merged footer describes
both.  Parquet allows this: a row group is a list of column chunks, each found
by its byte offset in the footer.

The footer is Thrift (compact protocol).  ``decode``/``encode`` below keep
every field they do not understand, so the merged footer carries the source's
statistics, encodings and any field newer writers add.  Only offsets of the
appended chunks and a few totals are changed.  Any surprise (encryption,
external column files, mismatched row groups) raises ``SpliceUnsupported`` and
the caller falls back to the streaming rewrite.
"""

from __future__ import annotations

import io
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"PAR1"

# Thrift compact protocol type ids
T_STOP, T_TRUE, T_FALSE, T_BYTE, T_I16, T_I32, T_I64 = range(7)
T_DOUBLE, T_BINARY, T_LIST, T_SET, T_MAP, T_STRUCT, T_UUID = range(7, 14)

#: In a decoding plan: keep the list's struct elements as encoded bytes (``RawStruct``).
RAW = object()


class SpliceUnsupported(Exception):
    """The file cannot be spliced safely; use the streaming rewrite."""


@dataclass
class TStruct:
    """A Thrift struct as ``{field id: (type id, value)}``; unknown fields kept."""

    fields: dict[int, tuple[int, Any]] = field(default_factory=dict)

    def get(self, fid: int, default: Any = None) -> Any:
        item = self.fields.get(fid)
        return default if item is None else item[1]

    def set(self, fid: int, ttype: int, value: Any) -> None:
        self.fields[fid] = (ttype, value)


@dataclass
class TList:
    elem_type: int
    items: list[Any]


@dataclass
class TMap:
    key_type: int
    value_type: int
    items: list[tuple[Any, Any]]


@dataclass
class RawStruct:
    """A struct kept as its encoded bytes (written back verbatim); ``field_ids`` are its top-level fields."""

    data: bytes
    field_ids: frozenset[int]


# ---------------------------------------------------------------- decoding


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        if len(out) != n:
            raise SpliceUnsupported("truncated footer")
        self.pos += n
        return out

    def value(self, ttype: int) -> Any:
        if ttype in (T_TRUE, T_FALSE):  # only inside containers: one raw byte
            return self.byte()
        if ttype == T_BYTE:
            return self.byte()
        if ttype in (T_I16, T_I32, T_I64):
            return self.zigzag()
        if ttype == T_DOUBLE:
            return self.take(8)
        if ttype == T_BINARY:
            return self.take(self.varint())
        if ttype == T_UUID:
            return self.take(16)
        if ttype in (T_LIST, T_SET):
            head = self.byte()
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return TList(elem, [self.value(elem) for _ in range(size)])
        if ttype == T_MAP:
            size = self.varint()
            if size == 0:
                return TMap(0, 0, [])
            kv = self.byte()
            kt, vt = kv >> 4, kv & 0x0F
            return TMap(kt, vt, [(self.value(kt), self.value(vt)) for _ in range(size)])
        if ttype == T_STRUCT:
            return self.struct()
        raise SpliceUnsupported(f"unknown Thrift type {ttype}")

    def struct(self, plan: dict[int, Any] | None = None) -> TStruct:
        """Decode a struct; ``plan`` maps a list field to ``RAW`` (keep its struct elements as bytes)
        or to the plan of its struct elements."""
        out = TStruct()
        last = 0
        while True:
            head = self.byte()
            ttype = head & 0x0F
            if ttype == T_STOP:
                return out
            delta = head >> 4
            fid = last + delta if delta else self.zigzag()
            last = fid
            if ttype in (T_TRUE, T_FALSE):
                out.fields[fid] = (ttype, ttype == T_TRUE)
            elif plan is not None and fid in plan and ttype == T_LIST:
                out.fields[fid] = (ttype, self.planned_list(plan[fid]))
            else:
                out.fields[fid] = (ttype, self.value(ttype))

    def planned_list(self, plan: Any) -> TList:
        head = self.byte()
        size, elem = head >> 4, head & 0x0F
        if size == 15:
            size = self.varint()
        if elem != T_STRUCT:
            return TList(elem, [self.value(elem) for _ in range(size)])
        if plan is RAW:
            return TList(elem, [self.raw_struct() for _ in range(size)])
        return TList(elem, [self.struct(plan) for _ in range(size)])

    def raw_struct(self) -> RawStruct:
        start = self.pos
        ids = self.skip_struct()
        return RawStruct(self.data[start:self.pos], frozenset(ids))

    def skip_struct(self) -> list[int]:
        """Move past a struct without building it; returns its top-level field ids."""
        data = self.data
        ids: list[int] = []
        last = 0
        while True:
            head = data[self.pos]
            self.pos += 1
            ttype = head & 0x0F
            if ttype == T_STOP:
                return ids
            delta = head >> 4
            last = last + delta if delta else self.zigzag()
            ids.append(last)
            if ttype not in (T_TRUE, T_FALSE):
                self.skip(ttype)

    def skip(self, ttype: int) -> None:
        data = self.data
        if ttype in (T_I16, T_I32, T_I64):
            while data[self.pos] & 0x80:
                self.pos += 1
            self.pos += 1
        elif ttype == T_BINARY:
            length = self.varint()  # not ``self.pos += self.varint()``: that adds to the old position
            self.pos += length
        elif ttype in (T_TRUE, T_FALSE, T_BYTE):
            self.pos += 1
        elif ttype == T_DOUBLE:
            self.pos += 8
        elif ttype == T_UUID:
            self.pos += 16
        elif ttype == T_STRUCT:
            self.skip_struct()
        elif ttype in (T_LIST, T_SET):
            head = self.byte()
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            for _ in range(size):
                self.skip(elem)
        elif ttype == T_MAP:
            size = self.varint()
            if size:
                kv = self.byte()
                for _ in range(size):
                    self.skip(kv >> 4)
                    self.skip(kv & 0x0F)
        else:
            raise SpliceUnsupported(f"unknown Thrift type {ttype}")
        if self.pos > len(data):
            raise SpliceUnsupported("truncated footer")


def decode(data: bytes, plan: dict[int, Any] | None = None) -> TStruct:
    """Decode one compact-protocol struct (a Parquet footer); see ``_Reader.struct`` for ``plan``."""
    try:
        return _Reader(data).struct(plan)
    except IndexError as exc:
        raise SpliceUnsupported("truncated footer") from exc


# ---------------------------------------------------------------- encoding


def _varint(out: io.BytesIO, n: int) -> None:
    while True:
        if n < 0x80:
            out.write(bytes((n,)))
            return
        out.write(bytes(((n & 0x7F) | 0x80,)))
        n >>= 7


def _zigzag(out: io.BytesIO, n: int) -> None:
    _varint(out, (n << 1) ^ (n >> 63))


def _value(out: io.BytesIO, ttype: int, value: Any) -> None:
    if ttype in (T_TRUE, T_FALSE, T_BYTE):
        out.write(bytes((value & 0xFF,)))
    elif ttype in (T_I16, T_I32, T_I64):
        _zigzag(out, value)
    elif ttype in (T_DOUBLE, T_UUID):
        out.write(value)
    elif ttype == T_BINARY:
        _varint(out, len(value))
        out.write(value)
    elif ttype in (T_LIST, T_SET):
        size = len(value.items)
        if size < 15:
            out.write(bytes(((size << 4) | value.elem_type,)))
        else:
            out.write(bytes((0xF0 | value.elem_type,)))
            _varint(out, size)
        for item in value.items:
            _value(out, value.elem_type, item)
    elif ttype == T_MAP:
        _varint(out, len(value.items))
        if value.items:
            out.write(bytes(((value.key_type << 4) | value.value_type,)))
            for k, v in value.items:
                _value(out, value.key_type, k)
                _value(out, value.value_type, v)
    elif ttype == T_STRUCT:
        if isinstance(value, RawStruct):
            out.write(value.data)
        else:
            _struct(out, value)
    else:
        raise SpliceUnsupported(f"unknown Thrift type {ttype}")


def _struct(out: io.BytesIO, s: TStruct) -> None:
    last = 0
    for fid in sorted(s.fields):
        ttype, value = s.fields[fid]
        if ttype in (T_TRUE, T_FALSE):
            ttype = T_TRUE if value else T_FALSE
        delta = fid - last
        if 0 < delta <= 15:
            out.write(bytes(((delta << 4) | ttype,)))
        else:
            out.write(bytes((ttype,)))
            _zigzag(out, fid)
        if ttype not in (T_TRUE, T_FALSE):
            _value(out, ttype, value)
        last = fid
    out.write(b"\x00")


def encode(s: TStruct) -> bytes:
    out = io.BytesIO()
    _struct(out, s)
    return out.getvalue()


# ------------------------------------------------------------ file footers


def footer_location(fd: int, size: int) -> tuple[int, int]:
    """(byte offset where the footer starts, its length), from the file's last 8 bytes (``os.pread``)."""
    if size < 12:
        raise SpliceUnsupported("file too small to be Parquet")
    if os.pread(fd, 4, 0) != MAGIC:
        raise SpliceUnsupported("not a plain Parquet file")
    tail = os.pread(fd, 8, size - 8)
    if len(tail) != 8 or tail[4:] != MAGIC:
        raise SpliceUnsupported("encrypted or damaged footer")
    (length,) = struct.unpack("<I", tail[:4])
    start = size - 8 - length
    if start < 4:
        raise SpliceUnsupported("footer length out of range")
    return start, length


def read_footer(f: BinaryIO, size: int) -> tuple[TStruct, int]:
    """(decoded FileMetaData, byte offset where the footer starts)."""
    if size < 12:
        raise SpliceUnsupported("file too small to be Parquet")
    f.seek(0)
    if f.read(4) != MAGIC:
        raise SpliceUnsupported("not a plain Parquet file")
    f.seek(size - 8)
    tail = f.read(8)
    if tail[4:] != MAGIC:
        raise SpliceUnsupported("encrypted or damaged footer")
    (length,) = struct.unpack("<I", tail[:4])
    start = size - 8 - length
    if start < 4:
        raise SpliceUnsupported("footer length out of range")
    f.seek(start)
    return decode(f.read(length)), start


# FileMetaData / RowGroup / ColumnChunk / ColumnMetaData field ids (parquet.thrift)
FM_SCHEMA, FM_NUM_ROWS, FM_ROW_GROUPS, FM_KV, FM_COLUMN_ORDERS, FM_ENCRYPTION = 2, 3, 4, 5, 7, 8
RG_COLUMNS, RG_TOTAL_BYTE_SIZE, RG_NUM_ROWS, RG_TOTAL_COMPRESSED = 1, 2, 3, 6
CC_FILE_PATH, CC_FILE_OFFSET, CC_META, CC_OFFSET_INDEX_OFFSET, CC_COLUMN_INDEX_OFFSET = 1, 2, 3, 4, 6
CC_CRYPTO, CC_ENCRYPTED_META = 8, 9
CMD_DATA_PAGE, CMD_INDEX_PAGE, CMD_DICT_PAGE, CMD_BLOOM = 9, 10, 11, 14
SE_NUM_CHILDREN = 5
KV_KEY = 1

#: How ``splice_columns`` decodes the source footer: its column chunks (most of the footer: offsets,
#: statistics, encodings) and column orders are copied verbatim, never rebuilt.
SOURCE_FOOTER_PLAN: dict[int, Any] = {FM_ROW_GROUPS: {RG_COLUMNS: RAW}, FM_COLUMN_ORDERS: RAW}


def _shift_chunk(chunk: TStruct, shift: int) -> None:
    for fid in (CC_FILE_OFFSET, CC_OFFSET_INDEX_OFFSET, CC_COLUMN_INDEX_OFFSET):
        if fid in chunk.fields:
            ttype, v = chunk.fields[fid]
            chunk.fields[fid] = (ttype, v + shift)
    meta = chunk.get(CC_META)
    if meta is None:
        raise SpliceUnsupported("column chunk without metadata")
    for fid in (CMD_DATA_PAGE, CMD_INDEX_PAGE, CMD_DICT_PAGE, CMD_BLOOM):
        if fid in meta.fields:
            ttype, v = meta.fields[fid]
            meta.fields[fid] = (ttype, v + shift)


def _check_plain(meta: TStruct) -> None:
    if FM_ENCRYPTION in meta.fields:
        raise SpliceUnsupported("encrypted file")
    for rg in meta.get(FM_ROW_GROUPS, TList(T_STRUCT, [])).items:
        for chunk in rg.get(RG_COLUMNS).items:
            ids = chunk.field_ids if isinstance(chunk, RawStruct) else chunk.fields
            if CC_FILE_PATH in ids or CC_CRYPTO in ids or CC_ENCRYPTED_META in ids:
                raise SpliceUnsupported("column data in another file or encrypted")


def row_group_sizes(source: Path) -> list[int]:
    """Rows per row group of ``source`` (footer only)."""
    import pyarrow.parquet as pq

    md = pq.read_metadata(source)
    return [md.row_group(i).num_rows for i in range(md.num_row_groups)]


def merge_footers(src: TStruct, extra: TStruct, shift: int, key_values: dict[str, str]) -> TStruct:
    """The footer of ``src`` with ``extra``'s columns appended (their offsets moved by ``shift``)."""
    _check_plain(src)
    _check_plain(extra)
    if src.get(FM_NUM_ROWS) != extra.get(FM_NUM_ROWS):
        raise SpliceUnsupported("row counts differ")
    src_groups = src.get(FM_ROW_GROUPS).items
    extra_groups = extra.get(FM_ROW_GROUPS).items
    if [g.get(RG_NUM_ROWS) for g in src_groups] != [g.get(RG_NUM_ROWS) for g in extra_groups]:
        raise SpliceUnsupported("row groups differ")

    schema_src = src.get(FM_SCHEMA).items
    schema_extra = extra.get(FM_SCHEMA).items
    root = schema_src[0]
    ttype, children = root.fields[SE_NUM_CHILDREN]
    root.fields[SE_NUM_CHILDREN] = (ttype, children + extra_root_children(schema_extra))
    src.set(FM_SCHEMA, T_LIST, TList(T_STRUCT, [*schema_src, *schema_extra[1:]]))

    for group, added in zip(src_groups, extra_groups, strict=True):
        chunks = added.get(RG_COLUMNS).items
        for chunk in chunks:
            _shift_chunk(chunk, shift)
        group.get(RG_COLUMNS).items.extend(chunks)
        for fid in (RG_TOTAL_BYTE_SIZE, RG_TOTAL_COMPRESSED):
            if fid in group.fields:
                ttype, v = group.fields[fid]
                group.fields[fid] = (ttype, v + (added.get(fid) or 0))

    orders_src, orders_extra = src.get(FM_COLUMN_ORDERS), extra.get(FM_COLUMN_ORDERS)
    if orders_src is not None and orders_extra is not None:
        orders_src.items.extend(orders_extra.items)
    else:
        src.fields.pop(FM_COLUMN_ORDERS, None)

    # The serialized Arrow schema describes only the source columns: drop it
    # (readers then derive types from the Parquet schema) and add ours.
    kvs = [kv for kv in (src.get(FM_KV) or TList(T_STRUCT, [])).items if kv.get(KV_KEY) != b"ARROW:schema"]
    for key, value in key_values.items():
        kvs.append(TStruct({1: (T_BINARY, key.encode()), 2: (T_BINARY, value.encode())}))
    src.set(FM_KV, T_LIST, TList(T_STRUCT, kvs))
    return src


def extra_root_children(schema: list[TStruct]) -> int:
    return int(schema[0].get(SE_NUM_CHILDREN))


#: Bytes per copy_file_range call: the copy checks between calls whether it should stop.
COPY_CHUNK = 16 << 20


def _copy_range(src_fd: int, dst_fd: int, count: int, stop: threading.Event | None = None) -> None:
    """Copy ``count`` bytes from the start of ``src_fd`` to ``dst_fd``'s position, in the kernel when possible.

    Only positional reads of ``src_fd`` (its file position is left alone, so
    other threads may ``pread`` it meanwhile).
    """
    offset = 0
    try:
        while offset < count:
            if stop is not None and stop.is_set():
                return
            n = os.copy_file_range(src_fd, dst_fd, min(COPY_CHUNK, count - offset), offset)
            if n == 0:
                break
            offset += n
    except (AttributeError, OSError):
        pass
    while offset < count:
        if stop is not None and stop.is_set():
            return
        chunk = os.pread(src_fd, min(8 << 20, count - offset), offset)
        if not chunk:
            raise SpliceUnsupported("source shorter than its footer says")
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view):]
        offset += len(chunk)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> int:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
    return offset


class Splice:
    """One splice in progress: the kernel starts copying the source's column chunks at construction.

    ``finish(make_extra, key_values)`` decodes the source footer, builds the
    extra columns and writes them and the merged footer *behind* the region
    being copied (``os.pwrite``), all while the copy runs; it then waits for
    the copy.  ``abort()`` stops the copy (the caller removes ``out``).
    Starting early lets the caller overlap its own work (row selection) with
    the copy, and give up if it turns out a rewrite is needed.
    """

    def __init__(self, source: Path, out: Path) -> None:
        self.source, self.out = source, out
        self._src = open(source, "rb")  # noqa: SIM115 - closed by close()
        self._fd = -1
        try:
            self.footer_start, self.footer_length = footer_location(self._src.fileno(), os.fstat(
                self._src.fileno()).st_size)
            self._fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except BaseException:
            self._src.close()
            raise
        self._stop = threading.Event()
        self._failure: list[BaseException] = []
        self._worker = threading.Thread(target=self._copy, name="n4a-export-copy", daemon=True)
        self._worker.start()

    def _copy(self) -> None:
        try:
            _copy_range(self._src.fileno(), self._fd, self.footer_start, self._stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            self._failure.append(exc)

    def finish(self, make_extra: Callable[[], bytes], key_values: dict[str, str]) -> int:
        """Complete ``out`` (see the class docstring); returns its size.  Closes the splice either way."""
        try:
            footer_bytes = os.pread(self._src.fileno(), self.footer_length, self.footer_start)
            if len(footer_bytes) != self.footer_length:
                raise SpliceUnsupported("truncated footer")
            src_meta = decode(footer_bytes, SOURCE_FOOTER_PLAN)
            _check_plain(src_meta)
            extra_parquet = make_extra()
            extra_meta, extra_footer_start = read_footer(io.BytesIO(extra_parquet), len(extra_parquet))
            footer = encode(merge_footers(src_meta, extra_meta, self.footer_start - 4, key_values))
            offset = self.footer_start
            for part in (memoryview(extra_parquet)[4:extra_footer_start], footer, struct.pack("<I", len(footer)),
                         MAGIC):
                offset = _pwrite_all(self._fd, part, offset)
            self._worker.join()
            if self._failure:
                raise self._failure[0]
            return os.fstat(self._fd).st_size
        except BaseException:
            self._stop.set()
            raise
        finally:
            self.close()

    def abort(self) -> None:
        """Stop the copy and close the files (``out`` stays: the caller removes it)."""
        self._stop.set()
        self.close()

    def close(self) -> None:
        self._worker.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._src.close()


def splice_columns(source: Path, make_extra: Callable[[], bytes], out: Path, key_values: dict[str, str]) -> int:
    """Write ``out`` = ``source``'s column chunks (copied) + the columns of ``make_extra()``; returns its size.

    ``make_extra()`` returns a Parquet file (bytes) with exactly ``source``'s
    row-group boundaries.  The kernel copies the source's bytes on another
    thread from the start; the footer decoding and ``make_extra`` (the
    metadata query and its encoding) overlap the copy.
    """
    return Splice(source, out).finish(make_extra, key_values)
