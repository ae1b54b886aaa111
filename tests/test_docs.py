"""The docs keep up with the code: every service module is described."""

from __future__ import annotations

from tests.conftest import PROJECT_ROOT


def test_architecture_describes_every_service_module() -> None:
    text = (PROJECT_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    package = PROJECT_ROOT / "crm"
    # A module at the top is named by its file (`pools.py`), one in a sub-package by its
    # path inside crm/ (`content_calendar/items.py`); migrations are Alembic's.
    modules = sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name not in {"__init__.py", "__main__.py"}
        and path.relative_to(package).parts[0] != "migrations"
    )
    missing = [name for name in modules if f"`{name}`" not in text]
    assert not missing, f"docs/architecture.md does not describe {missing}"


def test_readme_quick_start_has_exactly_the_two_commands() -> None:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0].strip() for block in quick_start.split("```sh")[1:]]
    assert blocks == ["make run", "make test"]
