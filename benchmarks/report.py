"""The results: a table on standard output and benchmarks/results/latest.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.demo_load import DemoDatabase
from benchmarks.pages import PageTiming

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_RATIO = 2.0
TARGET_CANDIDATES = 100_000
TARGET_LOAD_S = 60.0


@dataclass
class Measured:
    """One database's pages and the hello-world floor measured interleaved with them."""

    database: DemoDatabase
    pages: list[PageTiming]
    hello: list[PageTiming]

    @property
    def floor(self) -> PageTiming:
        return merged("hello-world", self.hello)


def merged(name: str, timings: list[PageTiming]) -> PageTiming:
    """All the samples of several pages as one."""
    return PageTiming(name, [sample for timing in timings for sample in timing.samples_ms])


def rounded(samples: list[float]) -> list[float]:
    return [round(sample, 1) for sample in samples]


def page_rows(measured: list[Measured]) -> list[dict[str, Any]]:
    """One row per page and database size, with its ratio to that run's hello-world."""
    rows = []
    for run in measured:
        floor = run.floor.median_ms
        judged = run.database.candidates >= TARGET_CANDIDATES
        for timing in run.pages:
            ratio = timing.median_ms / floor
            rows.append(
                {
                    "page": timing.page,
                    "candidates": run.database.candidates,
                    "median_ms": round(timing.median_ms, 1),
                    "p90_ms": round(timing.p90_ms, 1),
                    "hello_world_median_ms": round(floor, 1),
                    "ratio": round(ratio, 2),
                    "target_met": (ratio <= TARGET_RATIO) if judged else None,
                    "error_alerts": timing.error_alerts,
                    "samples_ms": rounded(timing.samples_ms),
                }
            )
    return rows


def hello_json(measured: list[Measured]) -> dict[str, Any]:
    """The floor overall and per run, with its samples."""
    everything = merged("hello-world", [t for run in measured for t in run.hello])
    return {
        "median_ms": round(everything.median_ms, 1),
        "p90_ms": round(everything.p90_ms, 1),
        "runs": [
            {
                "alongside_candidates": run.database.candidates,
                "median_ms": round(run.floor.median_ms, 1),
                "p90_ms": round(run.floor.p90_ms, 1),
                "pages": [{"page": t.page, "samples_ms": rounded(t.samples_ms)} for t in run.hello],
            }
            for run in measured
        ],
    }


def table(measured: list[Measured]) -> str:
    """The page table as fixed-width text, each size headed by its hello-world floor."""
    rows = page_rows(measured)
    header = (
        f"{'page':<18} {'candidates':>10} {'median ms':>10} {'p90 ms':>9} "
        f"{'ratio':>6}  target ≤{TARGET_RATIO:.1f}x @{TARGET_CANDIDATES:,} met"
    )
    lines = [header, "-" * len(header)]
    for run in measured:
        floor = run.floor
        lines.append(
            f"{'hello-world':<18} {run.database.candidates:>10,} {floor.median_ms:>10.0f} "
            f"{floor.p90_ms:>9.0f} {1.0:>6.2f}  (the floor, measured alongside)"
        )
        for row in rows:
            if row["candidates"] != run.database.candidates:
                continue
            met = row["target_met"]
            verdict = "-  (not judged at this size)" if met is None else ("yes" if met else "NO")
            lines.append(
                f"{row['page']:<18} {row['candidates']:>10,} {row['median_ms']:>10.0f} "
                f"{row['p90_ms']:>9.0f} {row['ratio']:>6.2f}  {verdict}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def load_lines(databases: list[DemoDatabase]) -> str:
    """The demo load times, the large one judged against its target."""
    lines = []
    for database in databases:
        line = (
            f"Demo load, {database.label} ({database.candidates:,} candidates): "
            f"{database.load_s:.1f} s (crm init {database.init_s:.1f} s + "
            f"crm demo {database.demo_s:.1f} s)"
        )
        if database.candidates >= TARGET_CANDIDATES:
            met = "yes" if database.load_s < TARGET_LOAD_S else "NO"
            line += f"; target < {TARGET_LOAD_S:.0f} s met: {met}"
        lines.append(line)
    return "\n".join(lines)


def write_json(data: dict[str, Any]) -> Path:
    """Write the results to benchmarks/results/latest.json and return its path."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "latest.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
