"""Kept results: what a finished job's buttons need, so they outlive a restart (issue 14).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out, as in 0001: storage.models.UTCDateTime stores this same column type.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kept_results",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("preset", sa.String(length=32), nullable=True),
        sa.Column("style_weights", sa.JSON(), nullable=True),
        sa.Column("space", sa.String(length=128), nullable=True),
        sa.Column("room", sa.String(length=128), nullable=True),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_kept_results")),
    )
    op.create_index("ix_kept_results_owner_created_at", "kept_results",
                    ["platform", "user_id", "created_at"])
    op.create_index("ix_kept_results_created_at", "kept_results", ["created_at"])
    op.create_table(
        "kept_images",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("from_preset", sa.Boolean(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("role IN ('content', 'style', 'mask')", name=op.f("ck_kept_images_role")),
        sa.ForeignKeyConstraint(["job_id"], ["kept_results.job_id"], ondelete="CASCADE",
                                name=op.f("fk_kept_images_job_id_kept_results")),
        sa.PrimaryKeyConstraint("job_id", "position", name=op.f("pk_kept_images")),
    )


def downgrade() -> None:
    op.drop_table("kept_images")
    op.drop_index("ix_kept_results_created_at", table_name="kept_results")
    op.drop_index("ix_kept_results_owner_created_at", table_name="kept_results")
    op.drop_table("kept_results")
