"""The approver's form: a note, kept on the request."""

from __future__ import annotations

from django import forms


class ApprovalDecisionForm(forms.Form):
    note = forms.CharField(
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why you approve or reject (required to reject); kept on the request.",
    )
