"""accounts.extra_roles and accounts.home_role: people with several roles, and the one
they chose to work in (their landing page after sign-in, issue 20)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("extra_roles", sa.String(length=255), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("home_role", sa.String(length=32), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("home_role")
        batch_op.drop_column("extra_roles")
