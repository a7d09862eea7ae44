"""Domain errors of four-eyes approvals (rendered by config.errors like every DomainError)."""

from __future__ import annotations

from config.errors import DomainError


class ApprovalNotPending(DomainError):
    code = "approval_not_pending"
    status = 409
    message = "This request has already been decided."


class ApprovalExpired(DomainError):
    code = "approval_expired"
    status = 409
    message = "This request has expired and can no longer be approved."


class SelfApprovalRefused(DomainError):
    code = "approval_self_approval"
    status = 403
    message = "You made this request: another staff user has to approve or reject it."


class ApproverPermissionRequired(DomainError):
    code = "approval_permission_required"
    status = 403
    message = "Approving or rejecting requests needs the approvals.approve_request permission."


class InvalidApprovalRequest(DomainError):
    code = "invalid_approval_request"
    status = 400
