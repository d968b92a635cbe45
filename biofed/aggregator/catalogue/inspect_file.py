"""Serving: Datasette's inspect file for the published catalogue."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path


def build_inspect_file(db_path: str | Path, inspect_path: str | Path | None = None) -> Path:
    """Write Datasette's inspect data (hash, size, table counts) next to the database.

    Served immutable with this file, Datasette never runs count(*) per request.
    """
    from datasette.cli import inspect_

    db_path = Path(db_path)
    inspect_path = Path(inspect_path) if inspect_path else db_path.with_name(db_path.stem + "-inspect.json")
    # Immutable readers ignore the WAL: move committed pages into the main file first.
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()

    def run():
        return asyncio.run(inspect_([str(db_path)], sqlite_extensions=None))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        data = run()
    else:  # called from async code: run in a fresh loop on a worker thread
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            data = pool.submit(run).result()
    inspect_path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return inspect_path
