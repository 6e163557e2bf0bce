"""ix_sp_token_value also holds resource_id, so token counts and IN-subqueries need no table visit

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sp_token_value", table_name="sp_token")
    op.create_index(
        "ix_sp_token_value",
        "sp_token",
        ["resource_type", "param", "code", "system", "resource_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_sp_token_value", table_name="sp_token")
    op.create_index(
        "ix_sp_token_value", "sp_token", ["resource_type", "param", "code", "system"], unique=False
    )
