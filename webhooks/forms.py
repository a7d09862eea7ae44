"""The admin's webhook endpoint form: the fields staff set; the secret is made by the service."""

from __future__ import annotations

from django import forms

from events.types import EVENT_TYPES
from webhooks.exceptions import WebhookUrlRefused
from webhooks.models import WebhookEndpoint
from webhooks.ssrf import url_check


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in sorted(EVENT_TYPES)],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None checked: every type except charge.declined.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "enabled"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            url_check(url)  # the service checks again; here staff see a form error instead
        except WebhookUrlRefused as refused:
            raise forms.ValidationError(refused.message, code=refused.code) from refused
        return url
