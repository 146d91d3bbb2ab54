"""``python -m n4a_widgets VERB PATH [options] [--json]``.

Each verb group lives in its own module with a ``register(subparsers)``
function; ``main`` collects them.  Output is the report's ``to_dict()`` with
``--json``, a short human summary otherwise.  Exit code 0 on success, 1 with
the error's message (and hint) on a ``WorkspaceError``, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..core.errors import WorkspaceError

#: Modules that add verbs, in help order.
VERB_MODULES = ("read_commands", "maintenance", "migration", "sql", "export", "merge", "fleet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m n4a_widgets",
        description="Inspect and maintain nirs4all workspaces (the same operations as the widgets).",
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name in VERB_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except WorkspaceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
