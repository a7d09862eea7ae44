from django.urls import path

from accounts import api

urlpatterns = [
    path("accounts", api.AccountListCreateView.as_view(), name="accounts"),
    path("accounts/<str:account_id>", api.AccountDetailView.as_view(), name="account-detail"),
]
