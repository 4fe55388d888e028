"""SIGTERM and SIGINT as one exception in the main thread, so that a long command (``plan``)
stops its workers, keeps what it stored, says how to resume and exits 128 + the signal's
number (143 for SIGTERM, 130 for SIGINT), the shell's convention, instead of dying with
workers left behind."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Raised by :func:`interrupts_raise` when SIGINT or SIGTERM arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(exc: BaseException) -> int:
    """128 + the signal number of an :class:`Interrupted`; 130 for a plain Ctrl-C."""
    return exc.exit_code if isinstance(exc, Interrupted) else 128 + int(signal.SIGINT)


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """Inside the block, the first SIGINT or SIGTERM raises :class:`Interrupted`; later ones
    are ignored until the block is left (the clean-up that follows must not be cut short).
    Outside the main thread (where handlers cannot be set) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}

    def handler(signum: int, _frame: Any) -> None:
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


__all__ = ["Interrupted", "exit_code", "interrupts_raise"]
