"""`python -m benchmarks.import_speed`: CSV import time against a floor, and its memory.

The floor is the least any import of the file must do, measured in the same run on the
same disk: pandas.read_csv of the file, then sqlite3 executemany of its rows into a fresh
table of the same columns in one transaction. The import is crm.importer.run_import of the
same file into a fresh migrated database: detection, the shared field rules on every row,
identity lookups, candidates with their skills, and the batch, in one transaction.
Then a million-row file is imported in a child process, which reports its peak RSS.

Exit 0 with a report even when a target is missed; exit 1 when something breaks.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

HEADERS = ["first", "last", "email", "linkedin url", "company", "title", "location", "skills"]
TARGET_RATIO = 3.0
AIM_RATIO = 1.5
TARGET_RSS_MB = 1024

_FIRST = [
    "Ana",
    "Ben",
    "Carla",
    "Daniel",
    "Eva",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kenji",
    "Lena",
    "Marco",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Aisha",
    "Bruno",
    "Chloe",
    "Diego",
    "Elif",
    "Felix",
    "Greta",
    "Hamza",
    "Ivana",
    "Jamal",
    "Katarina",
    "Liam",
    "Mei",
    "Nils",
    "Olga",
    "Pedro",
    "Rania",
    "Stefan",
    "Tomas",
    "Ursula",
    "Valentina",
    "William",
    "Yara",
    "Zhang",
    "Émilie",
    "Jürgen",
    "Søren",
    "Łukasz",
]
_LAST = [
    "Lima",
    "Smith",
    "Müller",
    "Garcia",
    "Rossi",
    "Nguyen",
    "Kowalski",
    "Dubois",
    "Jensen",
    "Tanaka",
    "Silva",
    "Johnson",
    "Brown",
    "Schmidt",
    "Martin",
    "Bernard",
    "Novak",
    "Horvat",
    "Andersen",
    "Kim",
    "Patel",
    "Okafor",
    "Haddad",
    "Costa",
    "Ferreira",
    "Yilmaz",
    "Petrov",
    "Ivanova",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Lefebvre",
    "Moreau",
    "O'Brien",
    "Van der Berg",
    "De la Cruz",
]
_DOMAINS = [("gmail.com", 40), ("outlook.com", 12), ("yahoo.com", 6), ("hotmail.com", 6)] + [
    (f"{name}.com", 2)
    for name in [
        "acme",
        "initech",
        "globex",
        "umbrella",
        "hooli",
        "soylent",
        "stark",
        "wayne",
        "wonka",
        "tyrell",
        "cyberdyne",
        "aperture",
        "massive",
        "vandelay",
        "oscorp",
    ]
]
_COMPANIES = [
    "Acme GmbH",
    "Initech",
    "Globex Corporation",
    "Umbrella plc",
    "Hooli",
    "Soylent Foods",
    "Stark Industries",
    "Wayne Enterprises",
    "Wonka & Sons",
    "Tyrell Corp",
    "Cyberdyne Systems",
    "Aperture Science",
    "Massive Dynamic",
    "Vandelay Industries",
    "Oscorp",
    "Zalando",
    "Spotify",
    "N26",
    "Klarna",
    "Adyen",
]
_TITLES = [
    "Software Engineer",
    "Senior Software Engineer",
    "Staff Engineer",
    "Data Scientist",
    "Product Manager",
    "Engineering Manager",
    "DevOps Engineer",
    "Frontend Developer",
    "Backend Developer",
    "UX Designer",
    "QA Engineer",
    "Data Engineer",
    "Site Reliability Engineer",
    "Technical Recruiter",
    "Head of Data",
]
_LOCATIONS = [
    "Berlin",
    "Munich",
    "Hamburg",
    "London",
    "Paris",
    "Amsterdam",
    "Lisbon",
    "Madrid",
    "Barcelona",
    "Stockholm",
    "Warsaw",
    "Vienna",
    "Zurich",
    "Dublin",
    "Remote",
]
_SKILLS = [
    "python",
    "java",
    "go",
    "rust",
    "typescript",
    "react",
    "sql",
    "postgresql",
    "kubernetes",
    "docker",
    "aws",
    "gcp",
    "terraform",
    "spark",
    "airflow",
    "pandas",
    "machine learning",
    "figma",
    "kotlin",
    "swift",
    "c++",
    "scala",
    "graphql",
    "kafka",
]


def _ascii(text: str) -> str:
    text = text.replace("ø", "o").replace("ł", "l")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_file(path: Path, rows: int, seed: int = 7) -> None:
    """A realistic candidates CSV: names with accents, shared mail domains, LinkedIn URLs."""
    rng = random.Random(seed)
    domains, weights = zip(*_DOMAINS, strict=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for number in range(rows):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            slug = f"{first}-{last}".lower().replace(" ", "-").replace("'", "")
            # People with accented names mostly use plain letters in their addresses.
            local = _ascii(f"{first}.{last}".lower().replace(" ", "").replace("'", ""))
            domain = rng.choices(domains, weights)[0]
            writer.writerow(
                [
                    first,
                    last,
                    f"{local}{number}@{domain}",
                    f"https://www.linkedin.com/in/{slug}-{number:x}",
                    rng.choice(_COMPANIES),
                    rng.choice(_TITLES),
                    rng.choice(_LOCATIONS),
                    ", ".join(rng.sample(_SKILLS, rng.randint(2, 6))),
                ]
            )


def floor_seconds(path: Path, folder: Path) -> float:
    """pandas.read_csv of the file plus an executemany of its rows into a plain table."""
    import pandas

    started = time.perf_counter()
    frame = pandas.read_csv(path, dtype=str, keep_default_na=False)
    connection = sqlite3.connect(folder / "floor.db")
    try:
        columns = ", ".join(f'"{name}" TEXT' for name in HEADERS)
        connection.execute(f"CREATE TABLE candidates ({columns})")
        with connection:
            connection.executemany(
                "INSERT INTO candidates VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                frame.itertuples(index=False, name=None),
            )
    finally:
        connection.close()
    return time.perf_counter() - started


def schema_seconds(path: Path, folder: Path) -> float:
    """The database's own share: the same rows written to the real table (candidates with
    their indexes and skills) by plain sqlite3 executemany, with no validation.

    Not a target: it shows how much of the import is SQLite's own work on this schema.
    """
    import pandas

    from crm import db

    engine = db.create_engine_for(f"sqlite:///{folder / 'schema.db'}")
    db.upgrade(engine)
    engine.dispose()
    started = time.perf_counter()
    frame = pandas.read_csv(path, dtype=str, keep_default_na=False)
    now = "2026-01-01 00:00:00.000000"
    candidates = []
    # Ids in email order, as the import gives them: both the table and the email index grow
    # at their ends.
    ordered = sorted(frame.itertuples(index=False, name=None), key=lambda row: row[2].lower())
    for number, (first, last, email, url, company, title, location, listed) in enumerate(
        ordered, start=1
    ):
        key = url.split("://", 1)[-1].removeprefix("www.").rstrip("/").lower()
        skills = json.dumps(listed.split(", "), separators=(",", ":"))
        candidates.append(
            (number, first, last, email, email.lower(), url, key, location, title, company)
            + (0, "legitimate_interest", "CSV import", "{}", skills, 1, now, now)
        )
    connection = sqlite3.connect(folder / "schema.db", isolation_level=None)
    try:
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO candidates (id, first_name, last_name, email, email_normalized, "
            "linkedin_url, linkedin_normalized, location, title, company, remote, "
            "consent_status, consent_source, custom_fields, skills, version, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            candidates,
        )
        connection.execute("COMMIT")
    finally:
        connection.close()
    return time.perf_counter() - started


def import_seconds(path: Path, folder: Path) -> tuple[float, dict[str, int]]:
    """run_import of the file into a fresh migrated database (set-up not timed)."""
    from crm import auth, db, importer

    folder.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine_for(f"sqlite:///{folder / 'crm.db'}")
    try:
        db.upgrade(engine)
        actor = auth.create_user(
            engine, username="bench", role="admin", password="bench-password-1"
        )
        started = time.perf_counter()
        result = importer.run_import(
            engine, path, importer.ImportOptions(), actor=actor, filename=path.name
        )
        elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    return elapsed, result.as_json() | {"error_report": 0}


def child(path: Path, folder: Path) -> None:
    """The million-row run, alone in its process so its peak RSS is the import's.

    The import parses in a helper process of its own (crm.imports.parsing.ParserProcess); its
    peak RSS is reported too, and the target holds for the two together.
    """
    elapsed, counts = import_seconds(path, folder)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    helper_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_rss_mb": peak_kib / 1024,
                "helper_rss_mb": helper_kib / 1024,
                **counts,
            }
        )
    )


def million(folder: Path, rows: int) -> dict[str, float]:
    path = folder / "million.csv"
    say(f"Writing a {rows:,}-row file...")
    write_file(path, rows, seed=11)
    say(f"Importing it in a child process ({path.stat().st_size / 1_048_576:.0f} MB)...")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.import_speed", "--child", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the million-row import failed:\n{completed.stderr[-3000:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    report["file_mb"] = path.stat().st_size / 1_048_576
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_speed", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the timed file")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the best counts (3)")
    parser.add_argument("--big", type=int, default=1_000_000, help="rows of the memory run")
    parser.add_argument("--no-big", action="store_true", help="skip the million-row run")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.child.parent / "child-db")
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="crm-import-bench-") as temp:
            folder = Path(temp)
            path = folder / "candidates.csv"
            say(f"Writing a {args.rows:,}-row file...")
            write_file(path, args.rows)
            floors, schemas, imports = [], [], []
            counts: dict[str, int] = {}
            for run in range(args.runs):
                say(f"Run {run + 1} of {args.runs}: floor, then import...")
                run_folder = folder / f"run{run}"
                run_folder.mkdir()
                floors.append(floor_seconds(path, run_folder))
                schemas.append(schema_seconds(path, run_folder))
                seconds, counts = import_seconds(path, run_folder / "crm")
                imports.append(seconds)
            big = None if args.no_big else million(folder, args.big)
    except Exception as error:  # a broken benchmark is exit 1, with the reason
        say(f"Error: {type(error).__name__}: {error}")
        return 1
    floor, schema, imported = min(floors), min(schemas), min(imports)
    ratio = imported / floor
    lines = [
        f"CSV import of {args.rows:,} candidates (best of {args.runs})",
        f"  floor  (pandas.read_csv + sqlite3 executemany): {floor:6.2f} s",
        f"  import (crm.importer.run_import):              {imported:6.2f} s "
        f"({args.rows / imported:,.0f} rows/s)",
        f"  ratio: {ratio:.2f}x (target <= {TARGET_RATIO:g}x, aim {AIM_RATIO:g}x) "
        f"{'OK' if ratio <= TARGET_RATIO else 'MISSED'}",
        f"  for scale, SQLite's own share - the same rows into the real table (candidates, "
        f"their indexes and skills) by executemany, no validation: {schema:.2f} s "
        f"({schema / floor:.2f}x the floor)",
        f"  counts: {counts}",
    ]
    if big is not None:
        main_rss, helper_rss = big["peak_rss_mb"], big["helper_rss_mb"]
        rss = main_rss + helper_rss
        lines += [
            f"Import of {args.big:,} rows ({big['file_mb']:.0f} MB) in a child process: "
            f"{big['seconds']:.1f} s, created {big['created']:,}",
            f"  peak RSS: {rss:,.0f} MB = import {main_rss:,.0f} MB + its parser helper "
            f"{helper_rss:,.0f} MB (target < {TARGET_RSS_MB:,} MB) "
            f"{'OK' if rss < TARGET_RSS_MB else 'MISSED'}",
        ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
