"""Fresh SQLite databases with demo data, and how long `crm init` + `crm demo` take."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from benchmarks.processes import BenchmarkError, crm_env, run_crm


@dataclass(frozen=True)
class DemoDatabase:
    """A database the benchmark built, with the wall-clock time it took."""

    label: str
    candidates: int
    folder: Path
    init_s: float
    demo_s: float

    @property
    def path(self) -> Path:
        return self.folder / "crm.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    @property
    def env(self) -> dict[str, str]:
        return crm_env(self.url, self.folder / "data")

    @property
    def load_s(self) -> float:
        return self.init_s + self.demo_s


def count_candidates(path: Path) -> int:
    """How many candidates the database really holds."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return connection.execute("SELECT count(*) FROM candidates").fetchone()[0]
    finally:
        connection.close()


def build(folder: Path, label: str, candidates: int | None = None) -> DemoDatabase:
    """`crm init` then `crm demo` (the default size when candidates is None) into folder."""
    folder.mkdir(parents=True)
    env = crm_env(f"sqlite:///{folder / 'crm.db'}", folder / "data")
    init_s = run_crm("init", env=env)
    size = [] if candidates is None else ["--candidates", str(candidates)]
    demo_s = run_crm("demo", *size, env=env)
    actual = count_candidates(folder / "crm.db")
    if candidates is not None and actual != candidates:
        raise BenchmarkError(f"`crm demo --candidates {candidates}` left {actual} candidates")
    return DemoDatabase(label, actual, folder, init_s, demo_s)
