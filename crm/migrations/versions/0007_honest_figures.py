"""honest figures: how an open was seen, and a cost's own category label

An open or click now records how it was seen (`events.seen_via`): by the person's own
mail program, through Gmail's image proxy (which fetches when the person opens), through
Apple Mail Privacy Protection (which fetches whether or not anyone reads), or by a
scanner. A cost keeps the category its source gave (`costs.category_label`) when that is
not one of the app's own, so "sign-on bonus" is counted as other and still shown as such.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seen_via", sa.String(length=16), nullable=True))
    with op.batch_alter_table("costs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category_label", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("costs", schema=None) as batch_op:
        batch_op.drop_column("category_label")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("seen_via")
