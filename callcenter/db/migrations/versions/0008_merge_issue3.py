"""merge the work-order branches

Sealed phones (0003), SLA watch index (0005), on-site fees and stock alerts (0006) and the search
indexes (0007) were developed side by side off 0002; this joins them so the history is one line
again from here on.

Revision ID: 0008
Revises: 0003, 0005, 0006, 0007
Create Date: 2026-11-23
"""

revision = "0008"
down_revision = ("0003", "0005", "0006", "0007")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
