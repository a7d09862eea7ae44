from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from config import monitoring, views

# The list pages need the width (the ledger's kind, amount and balance at 1366 px);
# the index page and the breadcrumbs already lead everywhere the sidebar did.
admin.site.enable_nav_sidebar = False
admin.site.site_header = "creditledger console"
admin.site.site_title = "creditledger"

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("metrics", monitoring.metrics_view, name="metrics"),
    path("healthz", monitoring.healthz_view, name="healthz"),
    path("api/schema/", views.SchemaView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("billing.urls")),
    path("api/v1/", include("pricing.urls")),
    path("api/v1/", include("refunds.urls")),
    path("api/v1/", include("events.urls")),
    path("api/v1/", include("webhooks.urls")),
    path("api/v1/", include("payments.urls")),
    path("webhooks/", include("payments.urls_webhooks")),
    path("portal/", include("payments.urls_portal")),
]

handler400 = "config.views.bad_request"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
