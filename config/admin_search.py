"""The admin header's search box: one term, straight to the object.

Apps register what a term can name, each at its own layer:
`admin_search_register(model, lookups, prefix="txn_")` for public ids
(tried when the term starts with the prefix), or without a prefix for
free terms (an account's external id or email, an API key's prefix), tried
when no prefix matched. config knows no app; each app registers its own
models from its admin module, so no lower app names a higher one.

The view (`admin:search`, on `config.admin_site.ConsoleAdminSite`) goes to
the object when exactly one row of one model matches, to that model's list
searched for the term when several do, and back with a message when none
does. Only models the user may view are searched.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin.utils import quote
from django.db.models import Model, Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

MAX_TERM = 200


@dataclass(frozen=True)
class SearchTarget:
    model: type[Model]
    lookups: tuple[str, ...]  # exact lookups, e.g. ("public_id",) or ("external_id", "email__iexact")
    prefix: str | None


TARGETS: list[SearchTarget] = []


def admin_search_register(
    model: type[Model], lookups: list[str] | tuple[str, ...], *, prefix: str | None = None
) -> None:
    """Let the header search find `model` rows whose `lookups` equal the term (only terms starting with `prefix`)."""
    TARGETS.append(SearchTarget(model=model, lookups=tuple(lookups), prefix=prefix))


def _targets(term: str) -> list[SearchTarget]:
    prefixed = [t for t in TARGETS if t.prefix and term.startswith(t.prefix)]
    return prefixed or [t for t in TARGETS if t.prefix is None]


def _matches(target: SearchTarget, term: str) -> list:
    query = Q()
    for lookup in target.lookups:
        query |= Q(**{lookup: term})
    return list(target.model._default_manager.filter(query).values_list("pk", flat=True)[:2])


def search_view(request, site):
    term = (request.GET.get("q") or "").strip()[:MAX_TERM]
    back = reverse("admin:index", current_app=site.name)
    if not term:
        return HttpResponseRedirect(back)
    found: list[tuple[SearchTarget, list]] = []
    for target in _targets(term):
        # The model's admin decides who may view it (approvals lets approvers see requests without view_*).
        model_admin = site._registry.get(target.model)
        if model_admin is None or not model_admin.has_view_permission(request):
            continue
        if pks := _matches(target, term):
            found.append((target, pks))
    if len(found) == 1 and len(found[0][1]) == 1:
        opts, pk = found[0][0].model._meta, found[0][1][0]
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(pk)], current_app=site.name)
        )
    if found:
        opts = found[0][0].model._meta
        if len(found) > 1:
            names = ", ".join(str(t.model._meta.verbose_name_plural) for t, _ in found)
            messages.info(request, f'"{term}" matches {names}; showing the {opts.verbose_name_plural}.')
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=site.name)
        return HttpResponseRedirect(f"{url}?{urlencode({'q': term})}")
    messages.warning(request, f'Nothing found for "{term}".')
    return HttpResponseRedirect(back)
