"""skills in the candidate row; drop indexes no query uses

An import wrote a candidate_skills row (and two index entries) per skill, four times the
candidates themselves; the skills now live in candidates.skills as compact JSON text
(crm.models.TextList). The company, location and role_family indexes served no query:
filters compare lower(...) and search uses LIKE '%...%', neither of which they can answer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The skills as compact JSON, as crm.models.encode_items writes them.
COPY_SKILLS_SQLITE = (
    "UPDATE candidates SET skills = (SELECT json_group_array(s.skill) FROM candidate_skills s "
    "WHERE s.candidate_id = candidates.id) "
    "WHERE id IN (SELECT candidate_id FROM candidate_skills)"
)
COPY_SKILLS_POSTGRESQL = (
    "UPDATE candidates SET skills = (SELECT '[' || string_agg(to_json(s.skill)::text, ',' "
    "ORDER BY s.skill) || ']' FROM candidate_skills s WHERE s.candidate_id = candidates.id) "
    "WHERE id IN (SELECT candidate_id FROM candidate_skills)"
)
RESTORE_SKILLS_SQLITE = (
    "INSERT INTO candidate_skills (candidate_id, skill) "
    "SELECT DISTINCT c.id, e.value FROM candidates c, json_each(c.skills) AS e"
)
RESTORE_SKILLS_POSTGRESQL = (
    "INSERT INTO candidate_skills (candidate_id, skill) SELECT DISTINCT c.id, e.value "
    "FROM candidates c, json_array_elements_text(c.skills::json) AS e(value)"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skills", sa.Text(), server_default="[]", nullable=False))
        batch_op.drop_index(batch_op.f("ix_candidates_company"))
        batch_op.drop_index(batch_op.f("ix_candidates_location"))
        batch_op.drop_index(batch_op.f("ix_candidates_role_family"))
    op.execute(COPY_SKILLS_POSTGRESQL if postgres else COPY_SKILLS_SQLITE)
    with op.batch_alter_table("candidate_skills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_candidate_skills_skill_candidate_id"))
    op.drop_table("candidate_skills")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "candidate_skills",
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("skill", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["candidates.id"],
            name=op.f("fk_candidate_skills_candidate_id_candidates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("candidate_id", "skill", name=op.f("pk_candidate_skills")),
    )
    with op.batch_alter_table("candidate_skills", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_candidate_skills_skill_candidate_id"),
            ["skill", "candidate_id"],
            unique=False,
        )
    op.execute(RESTORE_SKILLS_POSTGRESQL if postgres else RESTORE_SKILLS_SQLITE)
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_candidates_role_family"), ["role_family"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_candidates_location"), ["location"], unique=False)
        batch_op.create_index(batch_op.f("ix_candidates_company"), ["company"], unique=False)
        batch_op.drop_column("skills")
