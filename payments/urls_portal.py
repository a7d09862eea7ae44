from django.urls import path

from payments import portal

urlpatterns = [
    path("<str:token>", portal.portal_page, name="portal"),
    path("<str:token>/checkout", portal.portal_checkout, name="portal-checkout"),
]
