"""regions: per-region configuration (features, time zone, SSO, deadlines) and its change log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "region_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("changed", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("region_changes", schema=None) as batch_op:
        batch_op.create_index("ix_region_changes_region", ["region", "changed"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("region_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_region_changes_region")
    op.drop_table("region_changes")
    op.drop_table("regions")
