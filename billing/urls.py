from django.urls import include, path

from billing import api, api_alerts, api_batch, api_statement

urlpatterns = [
    path("grants", api.GrantCreateView.as_view(), name="grants"),
    path("charges/batch", api_batch.ChargeBatchCreateView.as_view(), name="charges-batch"),
    path("charges", api.ChargeCreateView.as_view(), name="charges"),
    path("accounts/<str:account_id>/balance", api.AccountBalanceView.as_view(), name="account-balance"),
    path("accounts/<str:account_id>/transactions", api.AccountTransactionsView.as_view(), name="account-transactions"),
    path("accounts/<str:account_id>/statement", api_statement.AccountStatementView.as_view(), name="account-statement"),
    path("accounts/<str:account_id>/alerts", api_alerts.AccountAlertsView.as_view(), name="account-alerts"),
    path("", include("billing.urls_holds")),
]
