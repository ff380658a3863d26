"""merge the branches of the notification outbox, the monthly report, outbound calls and surveys

The notification outbox (0011), the monthly report's indexes (0013), outbound call jobs (0014)
and survey results with complaint follow-ups (0015) were developed side by side off 0010; this
joins them so the history is one line again from here on.

Revision ID: 0016
Revises: 0011, 0013, 0014, 0015
Create Date: 2026-11-24
"""

revision = "0016"
down_revision = ("0011", "0013", "0014", "0015")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
