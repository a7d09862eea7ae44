from django.urls import path

from payments import api

urlpatterns = [
    path("packs", api.PackListView.as_view(), name="packs"),
    path("checkout-sessions", api.CheckoutSessionCreateView.as_view(), name="checkout-sessions"),
    path("accounts/<str:account_id>/auto-recharge", api.AutoRechargeView.as_view(), name="account-auto-recharge"),
    path(
        "accounts/<str:account_id>/portal-sessions",
        api.PortalSessionCreateView.as_view(),
        name="account-portal-sessions",
    ),
]
