"""Per-server and per-channel settings set by admins (issue 16).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out, as in 0001: storage.models.UTCDateTime stores this same column type.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "place_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("space", sa.String(length=128), nullable=False),
        sa.Column("room", sa.String(length=128), nullable=False),
        sa.Column("default_method", sa.String(length=64), nullable=True),
        sa.Column("default_size", sa.Integer(), nullable=True),
        sa.Column("allowed_methods", sa.JSON(), nullable=True),
        sa.Column("jobs_per_user", sa.Integer(), nullable=True),
        sa.Column("allow_sd", sa.Boolean(), nullable=True),
        sa.Column("results", sa.String(length=16), nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.CheckConstraint("results IS NULL OR results IN ('public', 'ephemeral')",
                           name=op.f("ck_place_settings_results")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_place_settings")),
        sa.UniqueConstraint("platform", "space", "room", name="uq_place_settings_place"),
    )


def downgrade() -> None:
    op.drop_table("place_settings")
