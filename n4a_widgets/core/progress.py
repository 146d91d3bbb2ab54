"""One progress/cancel ticker for every long operation.

nirs4all reports no progress of its own (docs/ARCHITECTURE.md, "Progress"), so
each operation reports from its own loops.  ``Ticker`` is the one object those
loops talk to: it clamps fractions, maps a sub-step into a span of the whole
(``ticker.span(0.1, 0.9)``), and answers "was Cancel pressed?".  ``check``
raises ``OperationCancelledError`` and is for points where nothing was
written yet; after a write, loops ask ``cancelled`` and stop cleanly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import OperationCancelledError

Progress = Callable[[float, str], None]
"""``progress(fraction in 0..1, message)``: the callback every long operation accepts."""


class Ticker:
    """Progress and cancel of one operation (or of one span of it)."""

    def __init__(
        self,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        *,
        lo: float = 0.0,
        hi: float = 1.0,
    ) -> None:
        self.progress = progress
        self.cancel = cancel
        self.lo = lo
        self.hi = hi

    def step(self, fraction: float, message: str) -> None:
        """Report ``fraction`` (0..1 of this ticker's span) with ``message``."""
        if self.progress is not None:
            f = min(max(float(fraction), 0.0), 1.0)
            self.progress(self.lo + (self.hi - self.lo) * f, message)

    def span(self, lo: float, hi: float) -> Ticker:
        """A ticker for a sub-step that covers ``lo..hi`` of this one."""
        width = self.hi - self.lo
        return Ticker(self.progress, self.cancel, lo=self.lo + width * lo, hi=self.lo + width * hi)

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def check(self, what: str) -> None:
        """Before anything was written: stop with ``OperationCancelledError``."""
        if self.cancelled:
            raise OperationCancelledError(f"{what} cancelled before anything was changed.")

    def done(self, message: str = "Done") -> None:
        self.step(1.0, message)


def as_ticker(progress: Progress | Ticker | None, cancel: threading.Event | None = None) -> Ticker:
    """Accept either a ``progress`` callback (public API) or a ticker (internal calls)."""
    if isinstance(progress, Ticker):
        return progress
    return Ticker(progress, cancel)
