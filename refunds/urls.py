from django.urls import path

from refunds import api

urlpatterns = [
    path("charges/<str:charge_id>/refunds", api.ChargeRefundCreateView.as_view(), name="charge-refunds"),
    path("accounts/<str:account_id>/refunds", api.AccountRefundsView.as_view(), name="account-refunds"),
    path("refunds/stats", api.RefundStatsView.as_view(), name="refund-stats"),
]
