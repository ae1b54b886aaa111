"""The demo's sign-ins: who they are, creating them, and which still have their password.

`crm demo` and the README list them all, and `crm serve` refuses a public address while
any of them is still open with its demo password.
"""

from __future__ import annotations

from sqlalchemy import Engine

from crm import auth
from crm.demo.vocabulary import email_part

# Every demo sign-in: username -> (role, display name, password). The admin comes first
# (the first user must be).
DEMO_ACCOUNTS = {
    "admin": ("admin", "Morgan Lee", "admin-demo-pass"),
    "recruiter": ("recruiter", "Priya Shah", "recruiter-demo-pass"),
    "manager": ("manager", "Daniel Okafor", "manager-demo-pass"),
    "jordan": ("recruiter", "Jordan Brooks", "jordan-demo-pass"),
    "li": ("recruiter", "Li Wei", "li-demo-pass"),
}
# role -> (username, password) of the one demo account named after each role.
DEMO_USERS = {
    role: (username, password)
    for username, (role, _, password) in DEMO_ACCOUNTS.items()
    if username == role
}


def accounts_with_demo_passwords(engine: Engine) -> list[str]:
    """The demo accounts that are active and still open with their demo password."""
    still = []
    for username, (_, _, password) in DEMO_ACCOUNTS.items():
        user = auth.find_user(engine, username)
        if user is not None and user.active and auth.password_matches(password, user.password_hash):
            still.append(username)
    return still


def create_users(engine: Engine) -> tuple[dict[str, int], list[str]]:
    """Every demo account, made where missing: (username -> user id, usernames created)."""
    ids: dict[str, int] = {}
    created: list[str] = []
    for username, (role, name, password) in DEMO_ACCOUNTS.items():
        existing = auth.find_user(engine, username)
        if existing is None:
            first = email_part(name.split()[0])
            last = email_part(name.split()[-1])
            existing = auth.create_user(
                engine,
                username=username,
                role=role,
                password=password,
                display_name=name,
                email=f"{first}.{last}@example.com",
                as_operator=True,
            )
            created.append(username)
        ids[username] = existing.id
    return ids, created
