from config.errors import DomainError, NotFound


class AccountNotFound(NotFound):
    code = "account_not_found"
    message = "No such account."


class AccountSuspended(DomainError):
    code = "account_suspended"
    status = 403
    message = "This account is suspended."


class AccountAlreadyExists(DomainError):
    code = "account_exists"
    status = 409
    message = "An account with this external_id already exists."
