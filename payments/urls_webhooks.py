from django.urls import path

from payments import webhooks

urlpatterns = [path("stripe", webhooks.stripe_webhook, name="stripe-webhook")]
