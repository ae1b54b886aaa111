"""Browser journeys: `crm serve` in a subprocess on a free port, Chromium via Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, TEST_SECRET, fresh_database_url

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SETTLED = "[data-testid=stApp][data-test-script-state=notRunning]"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log: Path

    def crm(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crm.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            timeout=300,
        )

    def crm_ok(self, *args: str, stdin: str | None = None) -> str:
        """Run `crm ARGS` against this server's database; it must succeed."""
        result = self.crm(*args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"crm serve exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"crm serve did not become healthy:\n{log.read_text()}")


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without its CRM_* settings (CRM_TEST_* kept), plus these."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CRM_") or key.startswith("CRM_TEST_")
    }
    env.update(settings)
    return env


@contextmanager
def serving(server: Server, port: int, *, cwd: Path = PROJECT_ROOT) -> Iterator[Server]:
    """`crm serve` for server on port, healthy for the block, always stopped after it."""
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "crm.cli", "serve", "--port", str(port), "--host", "127.0.0.1"],
            env=server.env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(server.url, process, server.log)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def crm_server(
    folder: Path,
    prepare: Callable[[Server], None],
    *,
    cwd: Path = PROJECT_ROOT,
    **settings: str,
) -> Iterator[Server]:
    """`crm serve` on a free port and a database of its own, after prepare(server) has set
    the database up (through `server.crm_ok`, or the services on `server.env`'s URL)."""
    with fresh_database_url(folder) as database_url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = clean_env(
            CRM_DATABASE_URL=database_url,
            CRM_SECRET_KEY=TEST_SECRET,
            CRM_DATA_DIR=str(folder / "data"),
            CRM_PUBLIC_URL=url,  # tracking links and the SSO redirect point back here
            **settings,
        )
        server = Server(url=url, env=env, log=folder / "serve.log")
        server.crm_ok("init")
        prepare(server)
        with serving(server, port, cwd=cwd) as running:
            yield running


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real server on a database with demo data and the demo users."""
    with crm_server(
        tmp_path_factory.mktemp("e2e"),
        lambda server: server.crm_ok("demo", "--candidates", "500"),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def settle(page: object) -> None:
    """Wait until Streamlit has finished running the script for what was just done."""
    page.wait_for_timeout(150)  # let the rerun begin before waiting for it to end
    page.wait_for_selector(SETTLED, timeout=60_000)


def sign_in(page: object, url: str, username: str, password: str) -> None:
    page.goto(url)
    settle(page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("[data-testid=stSidebarNav]", timeout=60_000)
    settle(page)
