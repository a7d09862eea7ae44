from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import ApiKey
from accounts.services import api_key_authenticate
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def test_create_service_key_prints_secret_last():
    out = StringIO()
    call_command("create_api_key", "--service", stdout=out, stderr=StringIO())
    secret = out.getvalue().strip().splitlines()[-1]
    assert api_key_authenticate(secret).kind == ApiKey.Kind.SERVICE


def test_create_account_key_binds_to_account():
    account = AccountFactory()
    out = StringIO()
    call_command("create_api_key", "--account", account.public_id, stdout=out, stderr=StringIO())
    api_key = api_key_authenticate(out.getvalue().strip().splitlines()[-1])
    assert api_key.account == account
