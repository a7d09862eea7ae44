"""Mark every pending approval request past its expiry as expired (cron or by hand).

The Celery beat task `approvals.tasks.expire_approvals` does the same; running
both is safe. Expiry is also checked when someone tries to approve.
"""

from django.core.management.base import BaseCommand

from approvals.services import approvals_expire_due


class Command(BaseCommand):
    help = "Mark pending four-eyes approval requests past their expiry (CREDITLEDGER_APPROVAL_TTL) as expired."

    def handle(self, *args, **options) -> None:
        expired = approvals_expire_due()
        self.stdout.write(f"Expired {expired} approval request(s).")
