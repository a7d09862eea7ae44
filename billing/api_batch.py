"""POST /api/v1/charges/batch: up to 100 charges in one call, each answered as POST /charges would answer it.

For gateways that report usage after the call. The batch is one
`MoneyPostView` request under its own `Idempotency-Key` header (a replay
returns the first answer byte for byte); each item also carries its own
`idempotency_key`, stored like a single charge's key (`billing.idempotency`,
"the items of a batch"), so an item already answered replays instead of
charging again. Pricing happens here, before `services.charges_batch_apply`
takes any lock; that service applies the items one posting per wallet, in a
fixed wallet order.
"""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings

from accounts.exceptions import AccountNotFound
from accounts.models import Account
from accounts.selectors import accounts_get_for_key
from billing import services
from billing.api import ChargeInput, entry_body, zero_charge_body
from billing.api_kit import IDEMPOTENCY_HEADER, MoneyPostView, resolve_account
from billing.fields import check_scale
from billing.idempotency import (
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    ItemKey,
    ItemReplay,
    batch_items_claim,
    batch_items_record,
    idempotency_key_valid,
    render,
    request_fingerprint,
)
from config.errors import DomainError, ErrorCode, LockTimeout, RequestRejected
from config.serializers import InputSerializer
from pricing.api import priced_usage_validate
from pricing.exceptions import CreditTypeNotFound
from pricing.selectors import credit_type_get
from pricing.services import price_quote

ITEM_KEY_FIELD = "idempotency_key"


@extend_schema_field({"type": "string", "pattern": KEY_PATTERN, "minLength": 1, "maxLength": KEY_MAX_LENGTH})
class _ItemKeyField(serializers.CharField):
    """An item's idempotency key: the Idempotency-Key header's rules (checked by `validate_idempotency_key`)."""


class ChargeBatchItemInput(ChargeInput):
    """One item: a charge's body (`amount`, or `key` and `usage`) plus its own `idempotency_key`."""

    idempotency_key = _ItemKeyField(max_length=KEY_MAX_LENGTH, trim_whitespace=False)

    def validate_idempotency_key(self, value: str) -> str:
        if not idempotency_key_valid(value):
            raise serializers.ValidationError("1 to 255 printable ASCII characters, no spaces.", code="invalid")
        return value

    def validate(self, attrs: dict) -> dict:
        """`ChargeInput.validate`, with the accounts the batch looked up at once (the context's `accounts`)."""
        accounts: dict[str | None, Account] = self.context["accounts"]
        public_id = attrs.get("account")
        if public_id not in accounts:
            accounts[public_id] = resolve_account(self.context["request"], public_id)
        attrs["account"] = accounts[public_id]
        attrs["credit_type"] = credit_type_get(attrs.get("credit_type"))
        check_scale(attrs, attrs["credit_type"].scale)
        return priced_usage_validate(attrs, amount_allowed=True)


@extend_schema_field(ChargeBatchItemInput(many=True))
class _Items(serializers.ListField):
    """Parsed as JSON values, each then validated as a `ChargeBatchItemInput` (errors per item); documented as one."""


class ChargeBatchInput(InputSerializer):
    """`items`: 1 to 100 charge bodies, each validated strictly like POST /charges."""

    # Null items too: each item, null or not, is answered at `items[i]` by its own validation.
    items = _Items(child=serializers.JSONField(allow_null=True), allow_empty=False)

    def validate_items(self, items: list) -> list[dict]:
        if len(items) > services.MAX_BATCH_ITEMS:
            raise RequestRejected(
                "too_many_items", f"A batch has at most {services.MAX_BATCH_ITEMS} items.", param="items"
            )
        validated: list[dict] = []
        errors: list[dict] = []
        # Every account the items name, looked up in one query (an unknown one is that item's 404 below).
        named = {item.get("account") for item in items if isinstance(item, dict)}
        found = accounts_get_for_key(api_key=self.context["request"].auth, public_ids=named)
        # One serializer validates every item (its fields built and bound once, not 100 times); its
        # run_validation keeps no state between calls. The errors are what `is_valid()` + `.errors` give.
        item_input = ChargeBatchItemInput(context={**self.context, "accounts": found})
        for item in items:
            try:
                validated.append(item_input.run_validation(item))
                errors.append({})
            except serializers.ValidationError as error:
                errors.append(_item_errors(error.detail))
        if any(errors):
            raise serializers.ValidationError(errors)
        seen: set[tuple[int, str]] = set()
        for index, params in enumerate(validated):
            scope = (params["account"].pk, params[ITEM_KEY_FIELD])
            if scope in seen:
                raise RequestRejected(
                    "duplicate_idempotency_key",
                    "Two items of this batch have the same idempotency_key.",
                    param=f"items[{index}].{ITEM_KEY_FIELD}",
                )
            seen.add(scope)
        return validated


def _item_errors(detail) -> dict:
    """An item's validation errors as `Serializer.errors` shows them (a null item: "No data provided")."""
    if isinstance(detail, list) and len(detail) == 1 and getattr(detail[0], "code", None) == "null":
        return {api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail("No data provided", code="null")]}
    return detail if isinstance(detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: detail}


ChargeBatchOutput = inline_serializer(
    name="ChargeBatch",
    fields={
        "object": serializers.CharField(),
        "data": inline_serializer(
            name="ChargeBatchItem",
            many=True,
            fields={
                "object": serializers.CharField(),
                "idempotency_key": serializers.CharField(),
                "status": serializers.IntegerField(),
                "replayed": serializers.BooleanField(),
                "body": serializers.JSONField(),
            },
        ),
    },
)


def _item_answer(outcome: services.BatchOutcome) -> tuple[int, dict]:
    """The status and body POST /charges gives for this outcome."""
    if isinstance(outcome, DomainError):
        return outcome.status, outcome.as_body()
    if isinstance(outcome, services.ZeroCharge):
        return 200, zero_charge_body(outcome)
    return 201, entry_body(outcome)


class ChargeBatchCreateView(MoneyPostView):
    """Up to 100 charges; 200 with each item's status and body (or error), in request order."""

    input_serializer = ChargeBatchInput
    # Whole-batch errors only: an item's decline or pricing error is that item's answer in the 200.
    api_errors = (
        ErrorCode(400, "too_many_items"),
        ErrorCode(400, "duplicate_idempotency_key"),
        # an item's field error is the batch's, `param` items[i]...: an item's text and counts are strict too
        ErrorCode(400, "not_a_string"),
        ErrorCode(400, "not_an_integer"),
        AccountNotFound,
        CreditTypeNotFound,
        LockTimeout,
    )
    pipelined = True  # one wait for all the wallets' locks, one for the bulk writes (docs/performance.md)

    @extend_schema(
        operation_id="charges_batch_create",
        request=ChargeBatchInput,
        responses={200: ChargeBatchOutput},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request):
        return super().post(request)

    def parse(self, request, target):
        params = super().parse(request, target)
        # The batch's own key is scoped to its first item's account (a service key's batch may span accounts).
        params["account"] = params["items"][0]["account"]
        return params

    def act(self, request, *, params, target, actor, idempotency_key):
        items: list[dict] = params["items"]
        sent: list[dict] = request.data["items"]
        # Each item's key is stored as POST /charges would store it for the item's own body.
        endpoint = f"{request.method} {request.path.removesuffix('/batch')}"
        keys = [
            ItemKey(
                account_id=item["account"].pk,
                key=item[ITEM_KEY_FIELD],
                fingerprint=request_fingerprint(
                    endpoint=endpoint, params={k: v for k, v in raw.items() if k != ITEM_KEY_FIELD}
                ),
            )
            for item, raw in zip(items, sent, strict=True)
        ]
        claims = batch_items_claim(request, items=keys, endpoint=endpoint)

        answers: dict[int, tuple[int, dict]] = {}
        forget: list[int] = []  # claims of items whose answer is not stored (as POST /charges stores none)
        fresh: list[int] = []
        charges: list[services.BatchCharge] = []
        for index, (item, claim) in enumerate(zip(items, claims, strict=True)):
            if isinstance(claim, ItemReplay | DomainError):
                continue
            try:
                # Priced before any wallet is locked.
                quote = (
                    price_quote(key=item["key"], usage=item["usage"], credit_type=item["credit_type"])
                    if "key" in item
                    else None
                )
            except DomainError as error:
                answers[index] = (error.status, error.as_body())
                forget.append(claim)  # a pricing error is not a decline: nothing stored
                continue
            fresh.append(index)
            charges.append(
                services.BatchCharge(
                    account=item["account"],
                    credit_type=item["credit_type"],
                    amount=item.get("amount"),
                    quote=quote,
                    task_id=item["task_id"],
                    route=item["route"],
                    description=item["description"],
                    metadata=item["metadata"],
                    idempotency_key=item[ITEM_KEY_FIELD],
                )
            )
        outcomes = services.charges_batch_apply(charges=charges, actor=actor)

        stored: dict[int, tuple[int, bytes]] = {}
        data: list[dict] = []
        for index, outcome in zip(fresh, outcomes, strict=True):
            status, body = _item_answer(outcome)
            answers[index] = (status, body)
            if isinstance(outcome, DomainError) and not outcome.replayable:
                forget.append(claims[index])
            else:
                stored[claims[index]] = (status, render(body))
        batch_items_record(answers=stored, forget=forget)
        for index, (item, claim) in enumerate(zip(items, claims, strict=True)):
            replayed = isinstance(claim, ItemReplay)
            if replayed:
                status, body = claim.status, json.loads(claim.content)
            elif isinstance(claim, DomainError):  # its key was used with another body
                status, body = claim.status, claim.as_body()
            else:
                status, body = answers[index]
            data.append(
                {
                    "object": "charge_batch_item",
                    ITEM_KEY_FIELD: item[ITEM_KEY_FIELD],
                    "status": status,
                    "replayed": replayed,
                    "body": body,
                }
            )
        return 200, {"object": "charge_batch", "data": data}
