"""Payments' writes, by subject (purchases, events, subscriptions, auto-recharge)."""
