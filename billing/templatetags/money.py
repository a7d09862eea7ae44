"""`{{ value|money:credit_type }}`: an amount in a template, by `config.money.money_display`."""

from django import template
from django.utils.html import format_html

from config.money import money_display

register = template.Library()


@register.filter
def money(value, credit_type):
    """`value` at `credit_type`'s scale (a credit type or a number of places), thousands separated.

    In a `<span class="money">`, like the admin's money columns: right-aligned
    digits, and one selector for the test that checks every amount's scale.
    """
    return format_html('<span class="money">{}</span>', money_display(value, credit_type))


@register.filter
def money_text(value, credit_type):
    """The same, as plain text: for labels such as a button's."""
    return money_display(value, credit_type)
