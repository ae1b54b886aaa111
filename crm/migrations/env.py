"""Alembic environment: the engine comes from crm.db (or CRM_DATABASE_URL)."""

from typing import Any

from alembic import context
from sqlalchemy import JSON

from crm import db
from crm.models import Base, TextList, UtcDateTime

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our column types with plain SQLAlchemy so migrations never import models."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime()"
    if type_ == "type" and isinstance(obj, TextList):
        return "sa.Text()"
    if type_ == "type" and isinstance(obj, JSON):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


def run_migrations() -> None:
    engine = context.config.attributes.get("engine") or db.get_engine()
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode copies a table and drops the old one; with foreign keys on, the
            # drop would delete the children's rows (ON DELETE CASCADE). SQLite ignores
            # this pragma inside a transaction, so it goes on the raw connection first.
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            _migrate(connection, check_foreign_keys=sqlite)
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys = ON")


def _migrate(connection: Any, *, check_foreign_keys: bool) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copy-and-move
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
        if check_foreign_keys:  # what the pragma would have refused, refused here
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
            if broken is not None:
                raise RuntimeError(f"the migration left a row in {broken[0]} pointing nowhere")
    connection.commit()


if context.is_offline_mode():
    raise SystemExit("Offline SQL generation is not supported; run `crm init`.")
run_migrations()
