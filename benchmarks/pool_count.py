"""`python -m benchmarks.pool_count`: counting a pool against the same query in raw sqlite3.

A pool with four conditions (two skills, a location, a minimum of years) is counted over a
fresh migrated SQLite database of realistic candidates, first at 100,000 (target 50 ms),
then at 1,000,000 (target 500 ms). The app's count is crm.pool_filter.count_matching end to end:
a read session, the filter compiled through the allow-list, SELECT count(*). The floor is
the very statement it compiles to (rendered with its values inline) run by plain sqlite3
on the same file. Both are timed round by round, interleaved, after one untimed warm-up;
the best run of each counts. No ANALYZE is run on the data: the app never runs it.

Exit 0 with a report even when a target is missed; exit 1 when something breaks (including
the two counts disagreeing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from benchmarks import import_speed

FILTER = {
    "all": [
        {"field": "skills", "op": "has_all", "value": ["python", "aws"]},
        {"field": "location", "op": "in", "value": ["London"]},
        {"field": "years_experience", "op": "gte", "value": 5},
    ]
}
CONDITIONS = 4  # two skills, a location, a minimum of years
TARGETS_MS = {100_000: 50.0, 1_000_000: 500.0}  # from the issue; other sizes scale linearly
CHUNK = 50_000  # rows per executemany: the million never sits in memory at once

# Names and mail domains as the import benchmark writes them.
_FIRST, _LAST, _DOMAINS = import_speed._FIRST, import_speed._LAST, import_speed._DOMAINS


# London about 10%; a few candidates have no location at all.
_LOCATIONS = [
    ("London", 10),
    ("Berlin", 12),
    ("Munich", 7),
    ("Hamburg", 5),
    ("Paris", 9),
    ("Amsterdam", 7),
    ("Lisbon", 5),
    ("Madrid", 6),
    ("Barcelona", 5),
    ("Stockholm", 5),
    ("Warsaw", 6),
    ("Vienna", 4),
    ("Zurich", 4),
    ("Dublin", 5),
    ("Manchester", 4),
    (None, 6),
]
# Skewed: a few skills are everywhere, most are niche.
_SKILLS = [
    ("python", 30),
    ("sql", 28),
    ("javascript", 22),
    ("aws", 18),
    ("java", 16),
    ("docker", 15),
    ("typescript", 14),
    ("react", 13),
    ("git", 12),
    ("kubernetes", 9),
    ("postgresql", 9),
    ("linux", 8),
    ("go", 6),
    ("terraform", 6),
    ("gcp", 5),
    ("azure", 5),
    ("pandas", 5),
    ("machine learning", 4),
    ("spark", 3),
    ("kafka", 3),
    ("rust", 2),
    ("figma", 2),
    ("c++", 2),
    ("scala", 1),
    ("graphql", 1),
]
INSERT = (
    "INSERT INTO candidates (first_name, last_name, email, email_normalized, location, remote, "
    "years_experience, consent_status, custom_fields, skills, version, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass
class Measured:
    rows: int
    build_s: float
    count: int
    app_ms: float
    floor_ms: float

    @property
    def ratio(self) -> float:
        return self.app_ms / self.floor_ms

    @property
    def target_ms(self) -> float:
        return TARGETS_MS.get(self.rows, self.rows / 100_000 * TARGETS_MS[100_000])


def _local_part(first: str, last: str) -> str:
    return import_speed._ascii(f"{first}.{last}".lower()).replace(" ", "").replace("'", "")


def say(message: str) -> None:
    """Progress goes to standard error; the report goes to standard output."""
    print(message, file=sys.stderr, flush=True)


def _expanded(weighted: list[tuple[Any, int]]) -> list[Any]:
    """Each value repeated by its weight: a uniform pick from it is a weighted pick."""
    return [value for value, weight in weighted for _ in range(weight)]


def candidate_rows(rows: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Realistic candidate rows, one at a time, in the candidates table's stored forms."""
    from crm.models import encode_items

    names_of_skills = [skill for skill, _ in _SKILLS]
    # No skill needs escaping in JSON, so any list of them encodes as this plain join: the
    # stored form without a json.dumps per row (a third of the time to make a row).
    if encode_items(names_of_skills) != '["' + '","'.join(names_of_skills) + '"]':
        raise RuntimeError("a skill's stored form needs escaping; use encode_items per row")
    rng = random.Random(seed)
    rand = rng.random
    names = [
        (
            first,
            last,
            import_speed._ascii(f"{first}.{last}".lower()).replace(" ", "").replace("'", ""),
        )
        for first in _FIRST
        for last in _LAST
    ]
    domains = _expanded(_DOMAINS)
    locations = _expanded(_LOCATIONS)
    skills = _expanded(_SKILLS)
    start = dt.datetime(2023, 1, 1)
    stamps = [
        (start + dt.timedelta(microseconds=rng.randrange(3 * 365 * 86400 * 10**6))).strftime(
            "%Y-%m-%d %H:%M:%S.%f"
        )
        for _ in range(4096)
    ]
    for number in range(rows):
        first, last, local = names[int(rand() * len(names))]
        email = f"{local}{number}@{domains[int(rand() * len(domains))]}"
        wanted = 2 + int(rand() * 7)  # 2 to 8 skills
        picked: dict[str, None] = {}
        while len(picked) < wanted:
            picked[skills[int(rand() * len(skills))]] = None
        # Mostly junior to mid-level; about one in twelve never said.
        years = None if rand() < 0.08 else min(25, int(rng.expovariate(1 / 6)))
        stamp = stamps[int(rand() * len(stamps))]
        yield (
            first,
            last,
            email,
            email.lower(),
            locations[int(rand() * len(locations))],
            1 if rand() < 0.25 else 0,
            years,
            "legitimate_interest",
            "{}",
            '["' + '","'.join(picked) + '"]',  # encode_items, checked above
            1,
            stamp,
            stamp,
        )


def build(path: Path, rows: int) -> float:
    """A fresh migrated database holding the rows, written by plain sqlite3 in one
    transaction; returns the seconds it took (migrations included).

    The table's own indexes are dropped for the load and created again from their stored
    SQL afterwards (sorting once is far faster than a million random inserts into each);
    the schema ends as the migrations left it.
    """
    from crm import db

    started = time.perf_counter()
    engine = db.create_engine_for(f"sqlite:///{path}")
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA journal_mode = OFF")  # a fresh file: nothing to recover
        connection.execute("PRAGMA cache_size = -131072")  # 128 MB for the unique email index
        connection.execute("BEGIN IMMEDIATE")
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'candidates' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        generated = candidate_rows(rows)
        while chunk := list(islice(generated, CHUNK)):
            connection.executemany(INSERT, chunk)
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
        connection.execute("PRAGMA journal_mode = WAL")  # as the app leaves its databases
        (stored,) = connection.execute("SELECT count(*) FROM candidates").fetchone()
    finally:
        connection.close()
    if stored != rows:
        raise RuntimeError(f"built {stored:,} candidates, wanted {rows:,}")
    return time.perf_counter() - started


def floor_sql(engine: Any) -> str:
    """The statement count_matching runs, rendered for SQLite with its values inline."""
    from sqlalchemy import func, select

    from crm import pool_filter
    from crm.db import read_session
    from crm.models import Candidate

    with read_session(engine) as session:
        condition = pool_filter.compile_filter(session, FILTER, now=dt.datetime.now(dt.UTC))
        statement = select(func.count()).select_from(Candidate).where(condition)
        compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    return str(compiled)


def measure(path: Path, rows: int, build_s: float, runs: int) -> tuple[Measured, str]:
    """Best of `runs` for the app's count and for the raw query, interleaved round by round."""
    from crm import db, pool_filter

    engine = db.create_engine_for(f"sqlite:///{path}")
    raw = sqlite3.connect(path)
    try:
        sql = floor_sql(engine)
        app_times, floor_times = [], []
        app_count = floor_count = None
        for round_number in range(1 + runs):  # the first round is a warm-up
            started = time.perf_counter()
            app_count = pool_filter.count_matching(engine, FILTER)
            app_s = time.perf_counter() - started
            started = time.perf_counter()
            (floor_count,) = raw.execute(sql).fetchone()
            floor_s = time.perf_counter() - started
            if app_count != floor_count:
                raise RuntimeError(
                    f"the app counted {app_count:,} but raw sqlite3 {floor_count:,} "
                    f"at {rows:,} candidates\n{sql}"
                )
            if round_number:
                app_times.append(app_s)
                floor_times.append(floor_s)
    finally:
        raw.close()
        engine.dispose()
    assert app_count is not None
    best_app, best_floor = min(app_times) * 1000, min(floor_times) * 1000
    return Measured(rows, build_s, app_count, best_app, best_floor), sql


def size(folder: Path, rows: int, runs: int) -> tuple[Measured, str]:
    path = folder / f"pool-{rows}.db"
    say(f"Building a {rows:,}-candidate database...")
    build_s = build(path, rows)
    say(f"  {build_s:.1f} s ({path.stat().st_size / 1_048_576:.0f} MB)")
    say(f"Counting the pool at {rows:,} candidates, best of {runs}...")
    measured, sql = measure(path, rows, build_s, runs)
    say(f"  app {measured.app_ms:.1f} ms, raw sqlite3 {measured.floor_ms:.1f} ms")
    path.unlink()
    return measured, sql


def line(measured: Measured) -> str:
    met = measured.app_ms <= measured.target_ms
    return (
        f"Pool count, {CONDITIONS} conditions, {measured.rows:,} candidates: "
        f"app {measured.app_ms:.1f} ms, raw sqlite3 {measured.floor_ms:.1f} ms "
        f"({measured.ratio:.2f}x), target <= {measured.target_ms:g} ms "
        f"{'OK' if met else 'MISSED'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pool_count", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="candidates (100000)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs; the best counts (7)")
    parser.add_argument("--big", type=int, default=1_000_000, help="candidates of the big run")
    parser.add_argument("--no-big", action="store_true", help="skip the million-candidate run")
    args = parser.parse_args(argv)
    sizes = [args.rows] if args.no_big else [args.rows, args.big]
    results: list[Measured] = []
    try:
        with tempfile.TemporaryDirectory(prefix="crm-pool-bench-") as temp:
            for rows in sizes:
                measured, sql = size(Path(temp), rows, args.runs)
                results.append(measured)
    except Exception as error:  # a broken benchmark is exit 1, with the reason
        say(f"Error: {type(error).__name__}: {error}")
        return 1
    lines = [
        "Pool filter: "
        + ", ".join(
            f"{condition['field']} {condition['op']} {json.dumps(condition['value'])}"
            for condition in FILTER["all"]
        ),
        f"  app: crm.pool_filter.count_matching end to end (session, filter compiled, count); "
        f"raw sqlite3: the same statement on the same file; best of {args.runs} each, "
        "interleaved, after a warm-up; no ANALYZE (the app never runs it)",
        f"  statement: {' '.join(sql.split())}",
    ]
    for measured in results:
        lines += [
            line(measured),
            f"  {measured.count:,} match ({measured.count / measured.rows:.2%}); "
            f"database built in {measured.build_s:.1f} s",
        ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
