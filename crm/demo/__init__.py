"""Realistic demo data: candidates, pools, jobs, campaigns, a content calendar and goals.

`crm demo` calls load_demo(). The package's public API is what this file imports; each
module holds one part of the data (see docs/architecture.md). Email addresses use the
reserved example.com/.org/.net domains, so a demo database can never mail a real person.
"""

from crm.demo.accounts import DEMO_ACCOUNTS, DEMO_USERS, accounts_with_demo_passwords
from crm.demo.loader import DemoSummary, has_data, load_demo, wipe

__all__ = [
    "DEMO_ACCOUNTS",
    "DEMO_USERS",
    "DemoSummary",
    "accounts_with_demo_passwords",
    "has_data",
    "load_demo",
    "wipe",
]
