from django.urls import path

from events import api

urlpatterns = [
    path("events", api.EventListView.as_view(), name="events"),
    path("events/<str:event_id>", api.EventDetailView.as_view(), name="event-detail"),
]
