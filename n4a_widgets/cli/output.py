"""Printing reports for the CLI: JSON for scripts, a few lines for people."""

from __future__ import annotations

import json
import sys
from typing import Any


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def emit(report: Any, as_json: bool, summary: str | None = None) -> None:
    """Print ``report.to_dict()`` as JSON, or ``summary`` (or key: value lines)."""
    data = report.to_dict()
    if as_json:
        json.dump(data, sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
        return
    if summary is not None:
        print(summary)
        return
    for key, value in data.items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
            if len(value) > 100:
                value = value[:97] + "..."
        print(f"{key}: {value}")


class CliProgress:
    """Progress on stderr, one line rewritten in place, at most 10 times a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        import time

        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and fraction < 1.0:
            return
        self._last = now
        sys.stderr.write(f"\r{fraction * 100:5.1f}%  {message[:70]:<70}")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()
