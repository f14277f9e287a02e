"""experiment arms: the online experiment and arm that served each recommendation

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("recommendations", sa.Column("experiment", sa.String(length=40), nullable=True))
    op.add_column("recommendations", sa.Column("arm", sa.String(length=40), nullable=True))
    op.create_index("ix_recommendations_experiment", "recommendations", ["experiment"])


def downgrade() -> None:
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_index("ix_recommendations_experiment")
        batch.drop_column("arm")
        batch.drop_column("experiment")
