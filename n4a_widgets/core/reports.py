"""Shared base for report dataclasses.

Reports are frozen dataclasses; ``to_dict()`` turns one into plain JSON types so
the CLI (``--json``), the widgets (the ``report`` trait) and tests all see the
exact same dict.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from enum import Enum
from pathlib import PurePath
from typing import Any


def to_plain(value: Any) -> Any:
    """Convert ``value`` into JSON-compatible Python types, recursively."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [to_plain(v) for v in items]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return to_plain(value.value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_plain(value.item())
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays
        return to_plain(value.tolist())
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


class Report:
    """Mixin for report dataclasses: ``to_dict()`` gives plain JSON types."""

    def to_dict(self) -> dict[str, Any]:
        result = to_plain(self)
        assert isinstance(result, dict)
        return result

    def __getitem__(self, key: str) -> Any:
        """Allow ``report["removed"]`` as well as ``report.removed``."""
        if key in {f.name for f in dataclasses.fields(self)}:  # type: ignore[arg-type]
            return getattr(self, key)
        raise KeyError(key)


def utc_now() -> str:
    """ISO-8601 UTC timestamp used in reports."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
