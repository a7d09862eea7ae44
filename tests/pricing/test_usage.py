"""pricing.services.usage_parse: the one usage parser (the API's UsageField and the hold services)."""

from __future__ import annotations

import pytest

from pricing.exceptions import InvalidUsage, UsageProblem
from pricing.services import Usage, usage_parse


def problems(data) -> list[UsageProblem]:
    with pytest.raises(InvalidUsage) as caught:
        usage_parse(data)
    assert caught.value.code == "invalid_usage"
    return caught.value.problems


def test_an_object_of_counts_is_a_usage_and_missing_counts_are_zero():
    assert usage_parse({"input_tokens": 1200, "requests": 1}) == Usage(input_tokens=1200, requests=1)
    assert usage_parse({}) == Usage()


def test_a_usage_is_returned_as_is():
    usage = Usage(units=3)
    assert usage_parse(usage) is usage


@pytest.mark.parametrize("data", [[1, 2], "input_tokens=1", 5, None])
def test_anything_but_an_object_is_refused_as_a_whole(data):
    assert [(p.field, p.code) for p in problems(data)] == [(None, "not_an_object")]


def test_unknown_names_are_refused_one_by_one():
    assert [(p.field, p.code) for p in problems({"tokens": 1, "cost": 2})] == [
        ("tokens", "unknown_field"),
        ("cost", "unknown_field"),
    ]


@pytest.mark.parametrize("value", [1.5, "10", True, None, [1]])
def test_a_count_must_be_an_integer(value):
    assert problems({"units": value}) == [UsageProblem("units", "not_an_integer", "Must be a JSON integer.")]


def test_a_count_may_not_be_negative():
    assert [p.code for p in problems({"input_tokens": -1})] == ["negative"]


def test_a_count_is_bounded_by_the_settings(settings):
    settings.PRICING_MAX_UNITS = 10
    assert usage_parse({"units": 10}).units == 10
    assert problems({"units": 11}) == [UsageProblem("units", "too_large", "May be at most 10.")]


def test_every_problem_is_reported_at_once():
    found = problems({"tokens": 1, "input_tokens": -1, "units": "2"})
    assert [(p.field, p.code) for p in found] == [
        ("tokens", "unknown_field"),
        ("input_tokens", "negative"),
        ("units", "not_an_integer"),
    ]


def test_the_error_names_its_first_problem():
    with pytest.raises(InvalidUsage) as caught:
        usage_parse({"output_tokens": -5, "units": "x"})
    assert caught.value.details == {"param": "usage.output_tokens"}
    assert caught.value.message == "usage.output_tokens may not be negative."


def test_an_unknown_name_is_an_error_about_the_usage():
    with pytest.raises(InvalidUsage) as caught:
        usage_parse({"tokens": 1, "units": -1})
    assert caught.value.details == {"param": "usage"}


def test_a_usage_built_directly_is_checked_the_same_way():
    with pytest.raises(InvalidUsage) as caught:
        Usage(requests=-1)
    assert [(p.field, p.code) for p in caught.value.problems] == [("requests", "negative")]
