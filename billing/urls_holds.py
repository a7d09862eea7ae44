from django.urls import path

from billing import api_holds

urlpatterns = [
    path("holds", api_holds.HoldCreateView.as_view(), name="holds"),
    path("holds/<str:hold_id>", api_holds.HoldDetailView.as_view(), name="hold-detail"),
    path("holds/<str:hold_id>/capture", api_holds.HoldCaptureView.as_view(), name="hold-capture"),
    path("holds/<str:hold_id>/release", api_holds.HoldReleaseView.as_view(), name="hold-release"),
    path("accounts/<str:account_id>/holds", api_holds.AccountHoldsView.as_view(), name="account-holds"),
]
