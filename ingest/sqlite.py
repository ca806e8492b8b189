"""SQLite the way every riskwatch table uses it: WAL files, autocommit connections and explicit transactions
taken up front (BEGIN IMMEDIATE), so a writer never fails halfway by having to upgrade a read lock."""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def connect(path: str | Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A connection usable from any thread (callers serialise writes); NORMAL survives a killed process,
    FULL also a power loss."""
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA busy_timeout=10000")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
