"""A diagnosis is unique per (run, source, kind, subject): a rule and a model check may both
report the same kind on the same layer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("diagnoses", schema=None) as batch_op:
        batch_op.drop_constraint("uq_diagnoses_run_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_diagnoses_run_id", ["run_id", "source", "kind", "subject"]
        )


def downgrade() -> None:
    with op.batch_alter_table("diagnoses", schema=None) as batch_op:
        batch_op.drop_constraint("uq_diagnoses_run_id", type_="unique")
        batch_op.create_unique_constraint("uq_diagnoses_run_id", ["run_id", "kind", "subject"])
