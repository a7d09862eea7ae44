"""Layers point down (STYLE.md item 17): no app reaches into an app above it.

`LAYERS` is the order, lowest first. A module may use its own app and the
apps in lower layers; never a higher one, and never another app in its own
layer (refunds and subscriptions know nothing of each other). An upper app
extends a lower one by registering into it: refunds re-registers billing's
`LedgerEntry` admin with its refund action, billing re-registers the
`Account` admin with the wallets and the money actions.

What is checked, in every `.py` file of every app package, migrations
included:

* every `import` and `from ... import`, wherever it is: module level, inside
  a function or class, under `if TYPE_CHECKING:`; and imports by name
  (`importlib.import_module("...")`, `__import__`, Django's `import_string`);
* model references by name: a relation field's target (`"app.Model"`),
  `apps.get_model(...)`, and a migration's `dependencies` and `run_before`.
  `HISTORY` lists the only migrations allowed to name an upper app (applied
  migrations are never edited); nothing new may be added to it.

Strings are not imports: `INSTALLED_APPS` in config/settings.py, Celery's
beat schedule naming `billing.tasks.*`, and `include("billing.urls")` in
config/urls.py name upper apps and that is how the project is wired. The
root wiring (config/urls.py, config/wsgi.py, config/celery.py) imports only
from config and reaches the apps by those strings, so it needs no exception.

Outside the layering: `tests/` and `bench/`, which may use everything. Every
other package at the top of the repository must be placed in `LAYERS`, so a
new app has to say where it sits.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS = [
    ["config"],
    ["accounts"],
    ["pricing"],
    ["events"],  # the Event model and event_record: billing's services record events in their transaction
    ["billing"],
    ["refunds", "subscriptions", "webhooks"],
    # approvals: four-eyes approvals post through billing's and refunds' services;
    # payments: money in (Stripe), grants purchased credits, mirrors subscriptions
    ["approvals", "payments"],
    # audit registers every app's models for the audit trail and wraps their admins; console: the dashboard
    ["audit", "console"],
    ["demo"],  # load_demo fills every admin page, so it needs them all
]
OUTSIDE = {"tests", "bench"}
RANK = {app: rank for rank, apps in enumerate(LAYERS) for app in apps}

# CreditType was created by billing 0001 and moved to pricing by pricing 0003,
# so pricing's migrations up to and including the move name billing: 0001's
# foreign keys pointed at billing.CreditType, and the move must come after
# billing's migrations that refer to the old table. (file, upper app)
HISTORY = {
    ("pricing/migrations/0001_initial.py", "billing"),
    ("pricing/migrations/0003_credittype_from_billing.py", "billing"),
}

DYNAMIC_IMPORTS = {"import_module", "__import__", "import_string"}
RELATION_FIELDS = {"ForeignKey", "OneToOneField", "ManyToManyField"}


@dataclass(frozen=True, order=True)
class Reference:
    path: str  # relative to the repository root
    line: int
    kind: str  # "imports" or "refers to"
    target: str  # the module or model label as written

    @property
    def app(self) -> str:
        return self.target.split(".")[0].lower()

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.kind} {self.app} ({self.target})"


def app_packages() -> list[str]:
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in OUTSIDE)


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _string(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def references(source: str, path: str) -> list[Reference]:
    """Every import and by-name model reference in one module's source."""
    parts = Path(path).with_suffix("").parts
    package = parts[:-1]  # a module's package; for an __init__.py, the package itself
    found: list[Reference] = []

    def add(node: ast.AST, kind: str, target: str | None) -> None:
        if target:
            found.append(Reference(path, node.lineno, kind, target))

    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, "imports", alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                add(node, "imports", ".".join([*base, *([node.module] if node.module else [])]))
            else:
                add(node, "imports", node.module)
        elif isinstance(node, ast.Call):
            name = _name(node.func)
            first = _string(node.args[0]) if node.args else None
            if name in DYNAMIC_IMPORTS:
                add(node, "imports", first)
            elif name in RELATION_FIELDS:
                to = first or next((_string(k.value) for k in node.keywords if k.arg == "to"), None)
                if to and "." in to:
                    add(node, "refers to", to)
            elif name == "get_model" and first:
                add(node, "refers to", first)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in ("dependencies", "run_before") for t in node.targets
        ):
            for element in getattr(node.value, "elts", []):
                if isinstance(element, ast.Tuple) and element.elts:
                    add(element, "refers to", _string(element.elts[0]))
    return found


def upward(ref: Reference, own_app: str) -> bool:
    """A reference to another app at the same layer or above `own_app`'s."""
    return ref.app in RANK and ref.app != own_app and RANK[ref.app] >= RANK[own_app]


def violations() -> tuple[list[Reference], set[tuple[str, str]]]:
    bad: list[Reference] = []
    history_used: set[tuple[str, str]] = set()
    for app in app_packages():
        if app not in RANK:
            continue  # test_every_app_is_placed says so
        for file in sorted((ROOT / app).rglob("*.py")):
            path = file.relative_to(ROOT).as_posix()
            for ref in references(file.read_text(), path):
                if not upward(ref, app):
                    continue
                if ref.kind == "refers to" and (path, ref.app) in HISTORY:
                    history_used.add((path, ref.app))
                    continue
                bad.append(ref)
    return sorted(bad), history_used


def test_every_app_is_placed_in_a_layer():
    unplaced = [app for app in app_packages() if app not in RANK]
    assert not unplaced, f"Place these packages in LAYERS (tests/test_layers.py) or OUTSIDE: {unplaced}"


def test_no_app_reaches_into_a_higher_layer():
    bad, _ = violations()
    assert not bad, "Layers point down (config < accounts < pricing < billing < refunds, subscriptions):\n" + "\n".join(
        f"  {ref}" for ref in bad
    )


def test_every_history_exception_is_still_needed():
    _, used = violations()
    assert used == HISTORY, f"No longer needed in HISTORY: {sorted(HISTORY - used)}"


# --- the walker itself ---------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import refunds.services",
        "from refunds import services",
        "from refunds.services import refund_issue as issue",
        "def f():\n    from refunds.services import refund_issue",
        "class A:\n    def f(self):\n        import refunds",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from refunds.models import RefundLog",
        "try:\n    import refunds\nexcept ImportError:\n    pass",
        "import importlib\nimportlib.import_module('refunds.services')",
        "from django.utils.module_loading import import_string\nimport_string('refunds.services.refund_issue')",
        "from django.db import models\nx = models.ForeignKey('refunds.RefundLog', on_delete=models.PROTECT)",
        "from django.db import models\nx = models.OneToOneField(to='refunds.refundlog', on_delete=models.PROTECT)",
        "from django.apps import apps\napps.get_model('refunds', 'RefundLog')",
        "class Migration:\n    dependencies = [('billing', '0001_initial'), ('refunds', '0001_initial')]",
        "class Migration:\n    run_before = [('refunds', '0001_initial')]",
    ],
)
def test_the_walker_finds_an_upward_reference_wherever_it_is(source):
    found = [ref for ref in references(source, "billing/example.py") if upward(ref, "billing")]
    assert [ref.app for ref in found] == ["refunds"]


@pytest.mark.parametrize(
    "path, source",
    [
        ("billing/example.py", "from accounts.models import Account\nfrom pricing.models import CreditType"),
        ("billing/example.py", "from . import models\nfrom .models import Wallet"),
        ("billing/sub/example.py", "from .. import models"),
        ("billing/example.py", "x = 'refunds.services'  # a string, not an import"),
        ("billing/example.py", "from django.db import models\nx = models.ForeignKey('self', on_delete=models.CASCADE)"),
        ("config/urls.py", "from django.urls import include, path\nurlpatterns = [path('', include('refunds.urls'))]"),
        ("refunds/example.py", "from billing.models import LedgerEntry"),
    ],
)
def test_the_walker_allows_what_points_down_or_is_not_an_import(path, source):
    own_app = path.split("/")[0]
    assert [str(ref) for ref in references(source, path) if upward(ref, own_app)] == []


def test_the_walker_reports_same_layer_apps():
    source = "from subscriptions.models import Plan"
    assert [str(r) for r in references(source, "refunds/x.py") if upward(r, "refunds")] == [
        "refunds/x.py:1 imports subscriptions (subscriptions.models)"
    ]
