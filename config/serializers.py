"""Request-body serializers that are cheap to instantiate."""

from __future__ import annotations

import copy

from rest_framework import serializers


class InputSerializer(serializers.Serializer):
    """A serializer for request input whose declared fields are copied shallowly per instance.

    DRF deep-copies every declared field for each serializer instance, which
    re-runs each field's `__init__`: on a charge that cost more than the
    charge's own SQL (docs/performance.md). Input fields here are never
    mutated after their declaration (binding sets attributes on the copy
    only), so a shallow copy per instance is enough; validators lists built
    at declaration are shared read-only. Do not use this for serializers
    that add or change fields or validators per instance.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}
