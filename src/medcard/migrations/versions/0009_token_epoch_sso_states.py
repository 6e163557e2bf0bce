"""accounts.token_epoch (token revocation) and sso_states (single-use SSO state shared by
every worker) (issue 14)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_epoch", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "sso_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("state_hash"),
    )
    op.create_index("ix_sso_states_expires", "sso_states", ["expires"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sso_states_expires", table_name="sso_states")
    op.drop_table("sso_states")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("token_epoch")
