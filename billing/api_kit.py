"""The shared API kit: the idempotent money-POST view, money rendering, account resolution, pagination.

Every money-moving POST (grants, charges, holds and their capture and
release, refunds) is a `MoneyPostView`: parse the input, run the service at
most once per Idempotency-Key (`billing.idempotency.run_idempotent`),
render. A new money endpoint declares its input serializer and writes `act`;
it never repeats the sequence.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.models import Account, ApiKey
from accounts.selectors import account_get_for_key
from billing.core import Actor
from billing.exceptions import IdempotencyKeyInUse, IdempotencyKeyRequired, IdempotencyKeyReused, InvalidIdempotencyKey
from billing.fields import check_scale
from billing.idempotency import HEADER, KEY_MAX_LENGTH, KEY_PATTERN, idempotency_key_from, run_idempotent
from config.lists import ListCursorPagination
from config.lists import StrictListView as StrictListView  # re-exported for the apps' list views
from pricing.models import CreditType

IDEMPOTENCY_HEADER = OpenApiParameter(
    name=HEADER,
    type={"type": "string", "pattern": KEY_PATTERN, "minLength": 1, "maxLength": KEY_MAX_LENGTH},
    location=OpenApiParameter.HEADER,
    required=True,
    description=(
        "Required: 1 to 255 printable ASCII characters (a UUID, or a job id of your own). "
        "A retry with the same key and body replays the first answer byte for byte; "
        "without it the request is refused (400 idempotency_key_required)."
    ),
)

as_time = serializers.DateTimeField().to_representation


def money(value: Decimal, credit_type: CreditType) -> str:
    """An amount as the API shows it: a decimal string at the credit type's scale."""
    return format(value.quantize(credit_type.quantum), "f")


def resolve_account(request, public_id: str | None) -> Account:
    """The account a request acts on: an account key defaults to its own."""
    api_key: ApiKey = request.auth
    if not public_id:
        if api_key.is_service:
            raise serializers.ValidationError(
                {"account": [serializers.ErrorDetail("This field is required.", code="required")]}
            )
        return api_key.account
    return account_get_for_key(api_key=api_key, public_id=public_id)


# Lists live in config (accounts and pricing list too): one shape everywhere.
LedgerCursorPagination = ListCursorPagination


class MoneyPostView(APIView):
    """Parse → run the service once per Idempotency-Key → render.

    Subclasses set `input_serializer` and implement `act`; an endpoint acting
    on an object named in its URL (a hold, a charge) implements `target`,
    which looks it up (404 for what the key may not see) before the body is
    parsed. The idempotency record is scoped to the account acted on and
    fingerprinted with the request's path and body as the client sent them.
    """

    input_serializer: type[serializers.Serializer]
    # Every money POST (config.openapi.declared_errors); a subclass declares what its `target`, `parse` and `act` add.
    api_errors = (IdempotencyKeyRequired, InvalidIdempotencyKey, IdempotencyKeyReused, IdempotencyKeyInUse)
    # Run the request's transaction in pipeline mode (billing.idempotency.run_idempotent): only for an `act`
    # whose writes need no answer before the commit (no row count or new key read back: a charge).
    pipelined = False

    def target(self, request, **url_kwargs: Any) -> Any:
        """The object the URL names, or None for a collection endpoint."""
        return None

    def parse(self, request, target: Any) -> dict:
        """The validated input; refuses bad input before anything is claimed or locked."""
        data = self.input_serializer(data=request.data, context={"request": request, "target": target})
        data.is_valid(raise_exception=True)
        params = data.validated_data
        if target is not None:  # an amount acting on a hold or a charge is at that object's scale
            check_scale(params, target.credit_type.scale)
        return params

    def act(self, request, *, params: dict, target: Any, actor: Actor, idempotency_key: str) -> tuple[int, dict]:
        """Call the service; (HTTP status, response body)."""
        raise NotImplementedError

    def post(self, request, **url_kwargs: Any):
        target = self.target(request, **url_kwargs)
        key = idempotency_key_from(request)  # 400 before the body is even read
        params = self.parse(request, target)
        account_id = target.account_id if target is not None else params["account"].pk
        return run_idempotent(
            request,
            account_id=account_id,
            endpoint=f"{request.method} {request.path}",
            route=f"{request.method} /{request.resolver_match.route}",
            params=request.data,
            pipelined=self.pipelined,
            effect=lambda: self.act(
                request, params=params, target=target, actor=Actor(api_key=request.auth), idempotency_key=key
            ),
        )
