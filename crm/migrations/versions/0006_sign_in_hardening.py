"""sign-in hardening: throttled failures and single sign-on bound to one identity

A failed sign-in now makes the next one wait (longer after each failure) instead of
locking the account for good, so each user keeps when their last failure was. A user
who signs in through single sign-on is bound to the provider's issuer and subject at the
first sign-in; a later sign-in with the same email but another subject is refused.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_failed_login_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("sso_issuer", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("sso_subject", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_users_sso_issuer_sso_subject"), ["sso_issuer", "sso_subject"]
        )
    # Accounts locked for good by the old rule start afresh under the waiting rule.
    op.execute("UPDATE users SET failed_login_attempts = 0")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_sso_issuer_sso_subject"), type_="unique")
        batch_op.drop_column("sso_subject")
        batch_op.drop_column("sso_issuer")
        batch_op.drop_column("last_failed_login_at")
