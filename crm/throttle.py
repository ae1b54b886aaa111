"""Sign-in throttling: after a few failures in a row, each attempt waits longer.

A permanent lock would let anyone lock any account for good by typing its name with
wrong passwords. So failures buy a wait instead, doubling from FIRST_WAIT up to
LONGEST_WAIT, counted per account (in the users table, shared by every app process)
and per client address and per unknown username (in this process). An unknown username
is throttled exactly like a real one, so the answers never tell which names exist.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
from dataclasses import dataclass

FREE_FAILURES = 5  # failures in a row before the first wait
FIRST_WAIT = dt.timedelta(seconds=30)
LONGEST_WAIT = dt.timedelta(minutes=15)
_REMEMBERED = 10_000  # keys kept per process; the oldest go first


def wait_after(failures: int) -> dt.timedelta:
    """How long to wait after the last of `failures` failures in a row."""
    if failures < FREE_FAILURES:
        return dt.timedelta(0)
    doublings = min(failures - FREE_FAILURES, 10)
    return min(FIRST_WAIT * 2**doublings, LONGEST_WAIT)


def wait_left(failures: int, last_failure: dt.datetime | None, now: dt.datetime) -> dt.timedelta:
    if last_failure is None:
        return dt.timedelta(0)
    return max(last_failure + wait_after(failures) - now, dt.timedelta(0))


def public_address(address: str | None) -> str | None:
    """The address when it is a public (global) one; None for private, loopback or junk."""
    try:
        return address if address and ipaddress.ip_address(address).is_global else None
    except ValueError:
        return None


def describe(wait: dt.timedelta) -> str:
    """'40 seconds', '2 minutes': how long, for the sentence the person reads."""
    seconds = max(int(wait.total_seconds() + 0.999), 1)
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclass
class _Record:
    failures: int
    last_failure: dt.datetime


class Throttle:
    """Failures in a row per key (a client address, an unknown username) in this process."""

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def wait_left(self, key: str | None, now: dt.datetime) -> dt.timedelta:
        if not key:
            return dt.timedelta(0)
        with self._lock:
            record = self._records.get(key)
        if record is None:
            return dt.timedelta(0)
        return wait_left(record.failures, record.last_failure, now)

    def failed(self, key: str | None, now: dt.datetime) -> None:
        if not key:
            return
        with self._lock:
            record = self._records.pop(key, None) or _Record(0, now)
            record.failures += 1
            record.last_failure = now
            self._records[key] = record  # re-inserted: the dict's order is by last failure
            while len(self._records) > _REMEMBERED:
                del self._records[next(iter(self._records))]

    def clear(self, key: str | None) -> None:
        if key:
            with self._lock:
                self._records.pop(key, None)


CLIENTS = Throttle()
UNKNOWN_NAMES = Throttle()
