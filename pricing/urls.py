from django.urls import path

from pricing import api

urlpatterns = [
    path("prices", api.PriceListView.as_view(), name="prices"),
    path("quotes", api.QuoteCreateView.as_view(), name="quotes"),
]
