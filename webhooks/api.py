"""REST API v1 for webhook endpoints (service keys only): create, list, read, update, delete, rotate the secret."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsServiceKey
from config.lists import QUERY_ERRORS, StrictListView, query_params_validate
from config.openapi import raises
from config.serializers import InputSerializer
from events.types import EVENT_TYPES
from webhooks import services
from webhooks.exceptions import WebhookEndpointNotFound, WebhookUrlRefused
from webhooks.models import WebhookEndpoint
from webhooks.selectors import endpoint_get, endpoints_all

_TYPES_HELP = "Event types this endpoint receives; empty: every type except the off-by-default ones (charge.declined)."


class WebhookEndpointOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.CharField(help_text='Always "webhook_endpoint".')
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=sorted(EVENT_TYPES)))
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(help_text="Why it was disabled (automatically or on request).")
    created_at = serializers.DateTimeField()
    secret_rotated_grace_until = serializers.DateTimeField(
        allow_null=True, help_text="Until when the previous secret also signs deliveries."
    )


class WebhookEndpointWithSecretOutput(WebhookEndpointOutput):
    secret = serializers.CharField(help_text="The signing secret (`whsec_…`): shown now and never again.")


def endpoint_body(endpoint: WebhookEndpoint, *, secret: str | None = None) -> dict:
    body = {
        "id": endpoint.public_id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at.isoformat().replace("+00:00", "Z"),
        "secret_rotated_grace_until": endpoint.previous_secret_expires_at.isoformat().replace("+00:00", "Z")
        if endpoint.previous_secret_expires_at
        else None,
    }
    if secret is not None:
        body["secret"] = secret
    return body


class _EventTypes(serializers.ListField):
    child = serializers.ChoiceField(choices=sorted(EVENT_TYPES))


class EndpointCreateInput(InputSerializer):
    url = serializers.CharField(
        max_length=2048,
        help_text="An https URL resolving to public addresses (http and private addresses only with "
        "CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE); otherwise 422 webhook_url_refused.",
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    event_types = _EventTypes(required=False, default=list, max_length=len(EVENT_TYPES), help_text=_TYPES_HELP)
    enabled = serializers.BooleanField(required=False, default=True)


class EndpointUpdateInput(InputSerializer):
    url = serializers.CharField(max_length=2048, required=False, help_text="As at creation.")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    event_types = _EventTypes(required=False, max_length=len(EVENT_TYPES), help_text=_TYPES_HELP)
    enabled = serializers.BooleanField(required=False)


class RotateInput(InputSerializer):
    grace_hours = serializers.FloatField(
        required=False, min_value=0, max_value=24 * 30, help_text="Default CREDITLEDGER_WEBHOOK_SECRET_GRACE_HOURS."
    )


def _parse(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class EndpointListCreateView(StrictListView):
    """Webhook endpoints, newest first; POST creates one and shows its secret once."""

    permission_classes = [IsServiceKey]
    serializer_class = WebhookEndpointOutput
    queryset = WebhookEndpoint.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return endpoints_all()

    def get_serializer(self, *args, **kwargs):
        if getattr(self, "swagger_fake_view", False):
            return super().get_serializer(*args, **kwargs)
        return _Bodies(*args, **kwargs)

    @extend_schema(operation_id="webhook_endpoints_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="webhook_endpoints_create",
        request=EndpointCreateInput,
        responses={201: WebhookEndpointWithSecretOutput},
    )
    @raises(*QUERY_ERRORS, WebhookUrlRefused)
    def post(self, request):
        query_params_validate(request, ())
        params = _parse(EndpointCreateInput, request)
        endpoint, secret = services.endpoint_create(**params)
        return Response(endpoint_body(endpoint, secret=secret), status=201)


class _Bodies:
    def __init__(self, instance, many: bool = False, **kwargs) -> None:
        self.data = [endpoint_body(e) for e in instance] if many else endpoint_body(instance)


class EndpointDetailView(APIView):
    permission_classes = [IsServiceKey]
    api_errors = (*QUERY_ERRORS, WebhookEndpointNotFound)

    @extend_schema(operation_id="webhook_endpoints_retrieve", responses={200: WebhookEndpointOutput})
    def get(self, request, endpoint_id: str):
        query_params_validate(request, ())
        return Response(endpoint_body(endpoint_get(public_id=endpoint_id)))

    @extend_schema(
        operation_id="webhook_endpoints_update", request=EndpointUpdateInput, responses={200: WebhookEndpointOutput}
    )
    @raises(WebhookUrlRefused)
    def patch(self, request, endpoint_id: str):
        query_params_validate(request, ())
        endpoint = endpoint_get(public_id=endpoint_id)
        params = _parse(EndpointUpdateInput, request)
        return Response(endpoint_body(services.endpoint_update(endpoint=endpoint, **params)))

    @extend_schema(operation_id="webhook_endpoints_delete", responses={204: None})
    def delete(self, request, endpoint_id: str):
        query_params_validate(request, ())
        services.endpoint_delete(endpoint=endpoint_get(public_id=endpoint_id))
        return Response(status=204)


class EndpointRotateSecretView(APIView):
    permission_classes = [IsServiceKey]
    api_errors = (*QUERY_ERRORS, WebhookEndpointNotFound)

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        request=RotateInput,
        responses={200: WebhookEndpointWithSecretOutput},
    )
    def post(self, request, endpoint_id: str):
        query_params_validate(request, ())
        endpoint = endpoint_get(public_id=endpoint_id)
        params = _parse(RotateInput, request)
        secret = services.endpoint_secret_rotate(endpoint=endpoint, grace_hours=params.get("grace_hours"))
        return Response(endpoint_body(endpoint, secret=secret))
