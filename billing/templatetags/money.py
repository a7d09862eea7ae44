"""`{{ value|money:credit_type }}`: an amount in a template, by `config.money.money_display`."""

from django import template

from config.money import money_display

register = template.Library()


@register.filter
def money(value, credit_type):
    """`value` at `credit_type`'s scale (a credit type or a number of places), thousands separated."""
    return money_display(value, credit_type)
