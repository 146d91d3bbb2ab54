"""n4a_widgets: notebook widgets to see, repair, migrate, prune, export, query
and merge nirs4all workspaces.

``import n4a_widgets`` is fast: nirs4all, duckdb, pyarrow and the widget
classes load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .core import *  # noqa: F403 - Workspace and every error class
from .core import __all__ as _CORE_NAMES
from .widgets import _WIDGETS as _WIDGET_MODULES

__version__ = "0.1.0"

_WIDGETS = tuple(_WIDGET_MODULES)  # names only: the widget classes load on first use

__all__ = [*_CORE_NAMES, *_WIDGETS]


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        return getattr(importlib.import_module(".widgets", __name__), name)
    raise AttributeError(f"module 'n4a_widgets' has no attribute {name!r}")
