"""REST API v1 for events: a client that was down catches up on what it missed (kept 30 days)."""

from __future__ import annotations

import django_filters
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.pagination import Cursor
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import AccountNotFound
from accounts.selectors import account_get_for_key
from config.filters import UtcIsoDateTimeFilter
from config.lists import LIST_QUERY_PARAMS, QUERY_ERRORS, StrictListView, list_body, query_params_validate
from config.openapi import raises
from events.exceptions import EventNotFound
from events.models import Event, FeedEvent
from events.selectors import event_get_for_key, events_page
from events.services import entry_event_data
from events.types import EVENT_TYPES


class EventOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id", help_text="`evt_...`; a webhook delivery's `webhook-id` is this id.")
    object = serializers.CharField(help_text='Always "event".')
    type = serializers.ChoiceField(choices=sorted(EVENT_TYPES))
    account = serializers.CharField(allow_null=True, help_text="The account it concerns; null for ledger-wide events.")
    created_at = serializers.DateTimeField()
    api_version = serializers.CharField()
    data = serializers.DictField(help_text="A snapshot of the object, the same body the API returns for it.")


def event_body(event: Event | FeedEvent) -> dict:
    """An event as the API and the webhooks send it (a stored event, a copy, or the feed's row)."""
    return {
        "id": event.public_id,
        "object": "event",
        "type": event.type,
        "account": event.account.public_id if event.account_id else None,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "api_version": event.api_version,
        "data": event.data,
    }


class EventFilter(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(choices=[(t, t) for t in sorted(EVENT_TYPES)])
    account = django_filters.CharFilter(method="filter_account", max_length=64)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = FeedEvent
        fields = ["type", "account", "created_after", "created_before"]

    def filter_account(self, queryset, name, value):
        # An unknown account (or one the key may not see) is a 404, as everywhere else.
        account = account_get_for_key(api_key=self.request.auth, public_id=value)
        return queryset.filter(account_id=account.pk)


class EventListView(StrictListView):
    """Events, newest first, cursor-paginated; an account key sees its own account's."""

    serializer_class = EventOutput
    filterset_class = EventFilter
    queryset = FeedEvent.objects.none()
    api_errors = (AccountNotFound,)  # the `account` filter

    def get_queryset(self):  # the schema's (the list itself is `events_page`)
        return FeedEvent.objects.none()

    def list(self, request, *args, **kwargs):
        query_params_validate(request, (*EventFilter.base_filters, *LIST_QUERY_PARAMS))

        def filtered(queryset):
            filterset = EventFilter(request.query_params, queryset=queryset, request=request)
            if not filterset.is_valid():
                raise translate_validation(filterset.errors)
            return filterset.qs

        paginator = self.paginator
        limit = paginator.get_page_size(request)
        cursor = paginator.decode_cursor(request)
        if cursor is not None and (cursor.reverse or cursor.offset or cursor.position is None):
            raise paginator.invalid_cursor()  # this list issues forward cursors by id only
        events, has_more = events_page(
            api_key=request.auth,
            filtered=filtered,
            type=request.query_params.get("type"),
            before=int(cursor.position) if cursor is not None else None,
            limit=limit,
        )
        next_cursor = None
        if has_more:
            next_cursor = paginator.encode_cursor(Cursor(offset=0, reverse=False, position=str(events[-1].id)))
        return Response(list_body(_EventBodies(events, many=True).data, has_more=has_more, next_cursor=next_cursor))

    def get_serializer(self, *args, **kwargs):
        if getattr(self, "swagger_fake_view", False):  # the schema: the serializer
            return super().get_serializer(*args, **kwargs)
        return _EventBodies(*args, **kwargs)

    @extend_schema(operation_id="events_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class _EventBodies:
    """The page's events rendered by `event_body` (the serializer stays the schema)."""

    def __init__(self, instance, many: bool = False, **kwargs) -> None:
        events = list(instance) if many else [instance]
        # The page's ledger entries' events rendered with one query, not one per event.
        rendered = entry_event_data([e.entry_id for e in events if e.entry_id is not None])
        for event in events:
            if event.entry_id is not None:
                event.__dict__["_rendered"] = rendered[event.entry_id]
        self.data = [event_body(e) for e in events] if many else event_body(events[0])


class EventDetailView(APIView):
    @extend_schema(operation_id="events_retrieve", responses={200: EventOutput})
    @raises(*QUERY_ERRORS, EventNotFound)
    def get(self, request, event_id: str):
        query_params_validate(request, ())
        return Response(event_body(event_get_for_key(api_key=request.auth, public_id=event_id)))
