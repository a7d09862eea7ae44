"""Python client for the creditledger API: ``Client``, ``AsyncClient``, typed errors, Decimal money."""

from creditledger._core import RetryPolicy, __version__
from creditledger.client import AsyncClient, Client
from creditledger.errors import *  # noqa: F403
from creditledger.errors import __all__ as _errors
from creditledger.helpers import REFUND_REASONS, refund_reason_for
from creditledger.models import (
    Account,
    APIObject,
    Balance,
    ChargeBatch,
    ChargeBatchItem,
    Hold,
    LedgerEntry,
    Price,
    PriceList,
    Quote,
    Refund,
    RefundStats,
    Statement,
    WalletBalance,
    ZeroCharge,
)
from creditledger.pagination import AsyncPager, Page, Pager

__all__ = [
    "__version__",
    "Client",
    "AsyncClient",
    "RetryPolicy",
    "APIObject",
    "Account",
    "Balance",
    "WalletBalance",
    "LedgerEntry",
    "ZeroCharge",
    "ChargeBatch",
    "ChargeBatchItem",
    "Hold",
    "Refund",
    "RefundStats",
    "Statement",
    "Quote",
    "Price",
    "PriceList",
    "Page",
    "Pager",
    "AsyncPager",
    "REFUND_REASONS",
    "refund_reason_for",
    *_errors,
]
