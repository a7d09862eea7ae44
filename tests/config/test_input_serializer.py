"""Input serializers copy their declared fields shallowly: binding and validation never touch the declarations."""

from billing.api_holds import HoldCaptureInput


def test_validating_binds_copies_and_leaves_the_declared_fields_untouched():
    declared = HoldCaptureInput._declared_fields["amount"]
    first = HoldCaptureInput(data={"amount": "1.50"})
    second = HoldCaptureInput(data={"amount": "not a number"})
    assert first.is_valid() and not second.is_valid()
    assert first.fields["amount"] is not declared and first.fields["amount"] is not second.fields["amount"]
    assert first.fields["amount"].parent is first and second.fields["amount"].parent is second
    assert declared.parent is None and declared.field_name is None
    assert str(first.validated_data["amount"]) == "1.50"
    assert list(second.errors) == ["amount"]
