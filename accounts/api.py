"""REST API v1 for accounts."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.exceptions import AccountAlreadyExists, AccountNotFound
from accounts.models import Account
from accounts.permissions import IsServiceKey
from accounts.selectors import account_get_for_key, accounts_visible_to
from config.lists import LIST_ERRORS, LIST_QUERY_PARAMS, QUERY_ERRORS, ListCursorPagination, query_params_validate
from config.openapi import raises
from config.serializers import InputSerializer


class AccountOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()  # may be blank: not format "email" in the schema
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_object(self, account) -> str:
        return "account"


class AccountInput(InputSerializer):
    external_id = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")


class AccountListCreateView(APIView):
    """List accounts this key may see (filter by external_id), or create one (service key)."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsServiceKey()]
        return super().get_permissions()

    @extend_schema(
        operation_id="accounts_list",
        parameters=[
            OpenApiParameter("external_id", str, required=False),
            OpenApiParameter("limit", int, required=False, description="Page size, 1 to 200 (default 50)."),
            OpenApiParameter("cursor", str, required=False, description="`next_cursor` of the previous page."),
        ],
        responses={
            200: inline_serializer(
                name="AccountList",
                fields={
                    "object": serializers.ChoiceField(choices=["list"]),
                    "data": AccountOutput(many=True),
                    "has_more": serializers.BooleanField(),
                    "next_cursor": serializers.CharField(allow_null=True),
                },
            )
        },
    )
    @raises(*LIST_ERRORS)
    def get(self, request):
        query_params_validate(request, ("external_id", *LIST_QUERY_PARAMS))
        accounts = accounts_visible_to(request.auth)
        external_id = request.query_params.get("external_id")
        if external_id is not None:
            accounts = accounts.filter(external_id=external_id[:255])
        paginator = ListCursorPagination()
        page = paginator.paginate_queryset(accounts, request, view=self)
        return paginator.get_paginated_response(AccountOutput(page, many=True).data)

    @extend_schema(operation_id="accounts_create", request=AccountInput, responses={201: AccountOutput})
    @raises(AccountAlreadyExists)
    def post(self, request):
        data = AccountInput(data=request.data)
        data.is_valid(raise_exception=True)
        account = services.account_create(**data.validated_data)
        return Response(AccountOutput(account).data, status=201)


class AccountDetailView(APIView):
    @extend_schema(operation_id="accounts_retrieve", responses={200: AccountOutput})
    @raises(*QUERY_ERRORS, AccountNotFound)
    def get(self, request, account_id: str):
        query_params_validate(request, ())
        account: Account = account_get_for_key(api_key=request.auth, public_id=account_id)
        return Response(AccountOutput(account).data)
