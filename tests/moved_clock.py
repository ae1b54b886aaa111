"""Run a Python module with the clock moved: the subprocess side of CRM_TEST_CLOCK.

    python -m tests.moved_clock MOMENT ZONE -m MODULE [ARGS ...]
    python -m tests.moved_clock MOMENT ZONE -c CODE

runs MODULE (or CODE) as `python -m` (or `-c`) would, with time-machine travelling to
MOMENT (ISO 8601) in ZONE, ticking on from there. conftest.python_command builds this line.
"""

from __future__ import annotations

import datetime as dt
import runpy
import sys
import zoneinfo

import time_machine


def main() -> None:
    moment, zone, flag, target, *args = sys.argv[1:]
    if flag not in ("-m", "-c"):
        raise SystemExit("usage: python -m tests.moved_clock MOMENT ZONE -m MODULE [ARGS ...]")
    start = dt.datetime.fromisoformat(moment).astimezone(zoneinfo.ZoneInfo(zone))
    time_machine.travel(start, tick=True).start()
    if flag == "-c":
        sys.argv = ["-c", *args]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
        return
    sys.argv = [target, *args]
    runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
