"""Subprocesses the benchmark starts: `crm` commands and the servers, always stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_SECRET = "benchmark-secret-key-that-is-long-enough"
HEALTH_TIMEOUT_S = 90.0


class BenchmarkError(Exception):
    """Something broke (as opposed to a target being missed): the run exits 1."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Extra environment for both servers (hello-world and the app), e.g. Streamlit options.
SERVER_ENV: dict[str, str] = {}


def base_env() -> dict[str, str]:
    """This environment without any CRM_ setting."""
    return {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}


def crm_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """This environment without any CRM_ setting, pointed at one database and data folder."""
    env = base_env()
    env.update(
        CRM_DATABASE_URL=database_url,
        CRM_SECRET_KEY=BENCH_SECRET,
        CRM_DATA_DIR=str(data_dir),
    )
    return env


def run_crm(*args: str, env: dict[str, str], timeout: float = 900) -> float:
    """Run one `crm` command to completion; its wall-clock seconds, or BenchmarkError."""
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "crm.cli", *args],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise BenchmarkError(f"`crm {' '.join(args)}` took over {timeout:.0f} s") from error
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchmarkError(
            f"`crm {' '.join(args)}` exited {result.returncode}:\n{result.stderr.strip()}"
        )
    return elapsed


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process we started, then kill it if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll Streamlit's health route until it answers ok; BenchmarkError if it never does."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"the server exited early ({process.returncode}):\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise BenchmarkError(f"the server did not become healthy in time:\n{tail(log)}")


@contextmanager
def serving(command: list[str], *, url: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """Start a server, wait for its health check, yield its URL, and always stop it."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env={**env, **SERVER_ENV},
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(url, process, log)
            yield url
        finally:
            stop(process)


def serve_crm(env: dict[str, str], log: Path) -> AbstractContextManager[str]:
    """`crm serve` on a free port (a context manager yielding the URL)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "crm.cli",
        "serve",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    return serving(command, url=f"http://127.0.0.1:{port}", env=env, log=log)


def serve_hello(log: Path) -> AbstractContextManager[str]:
    """benchmarks/hello.py under `streamlit run` on a free port, from the project folder.

    Run from the project folder so it gets the same .streamlit/config.toml (theme, toolbar)
    as the app.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(Path(__file__).with_name("hello.py")),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    return serving(command, url=f"http://127.0.0.1:{port}", env=base_env(), log=log)
