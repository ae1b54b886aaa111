"""The `crm` command: a thin shell over the same services the web app uses.

`shell` holds the root app and what every command shares; each other module is one group
of commands, registered on the root app when imported here. Commands import the services
they run inside their own function, so `crm --help` and each command start quickly.
"""

from __future__ import annotations

from crm.cli import admin, calendar, campaigns, data, metrics, pools
from crm.cli.shell import app

COMMAND_MODULES = (admin, data, pools, campaigns, calendar, metrics)


def main() -> None:
    app()
