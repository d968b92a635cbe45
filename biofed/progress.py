"""Progress for long work: a rich bar on a terminal, JSON log lines elsewhere.

    with progress("import", total=len(rows)) as advance:
        for row in rows:
            ...
            advance(1)
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Callable, Iterator


def log_event(event: str, **fields) -> None:
    """One JSON line on stderr: what scheduled runs and CI read."""
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
    print(json.dumps(line, ensure_ascii=False, default=str), file=sys.stderr, flush=True)


@contextlib.contextmanager
def progress(description: str, total: int | None = None, *, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    if quiet:
        yield lambda n=1: None
        return
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)
        return
    done = 0
    started = time.monotonic()
    last = started
    log_event("start", task=description, total=total)

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= 5:  # a line every few seconds, not per item
            last = now
            log_event("progress", task=description, done=done, total=total)

    yield advance
    log_event("done", task=description, done=done, total=total, seconds=round(time.monotonic() - started, 3))
