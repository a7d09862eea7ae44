from django.urls import path

from webhooks import api

urlpatterns = [
    path("webhook-endpoints", api.EndpointListCreateView.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/<str:endpoint_id>", api.EndpointDetailView.as_view(), name="webhook-endpoint-detail"),
    path(
        "webhook-endpoints/<str:endpoint_id>/rotate-secret",
        api.EndpointRotateSecretView.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
]
