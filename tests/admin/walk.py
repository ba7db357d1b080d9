"""A crawler of every URL the admin site serves, for the tenancy walk test (tests/admin/test_walk.py).

It plans requests from ``admin.site.get_urls()`` itself, so a URL added later is either walked or makes the
test fail (``unhandled``), never silently skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, reverse

LINK = re.compile(r'href="(\?[^"]*)"')
ACTION_OPTION = re.compile(r'<option value="([a-z_]+)">')
SITE_PAGES = ("index", "login", "logout", "password_change", "password_change_done", "jsi18n")
OBJECT_PAGES = ("change", "history", "delete")
CATCH_ALL = "(?P<url>.*)$"  # the site's unnamed last pattern: unknown admin URLs


def pattern_names() -> set[str]:
    """Every URL the admin site serves, by name (unnamed ones by their model and route)."""
    names: set[str] = set()

    def visit(patterns, owner: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                visit(pattern.url_patterns, str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                names.add(pattern.name or f"{owner}{pattern.pattern}")

    visit(admin.site.get_urls(), "")
    return names


@dataclass
class Visit:
    method: str
    url: str
    status: int
    pattern: str


@dataclass
class Walk:
    """Requests made as one signed-in user, and what came back."""

    client: object
    forbidden: list[str]  # texts no response may contain (lower case)
    visits: list[Visit] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    covered: set[str] = field(default_factory=set)

    def request(self, pattern: str, url: str, *, data=None, method: str = "get", follow: bool = False):
        self.covered.add(pattern)
        response = getattr(self.client, method)(url, data or {}, follow=follow or method == "post")
        text = response.content.decode(errors="replace").lower() + response.get("Location", "").lower()
        for redirect, _ in getattr(response, "redirect_chain", []):
            text += redirect.lower()
        for word in self.forbidden:
            # An id the request itself names may come back in a redirect to it; the status is checked instead.
            if word in text and word not in url:
                self.leaks.append(f"{method.upper()} {url}: {word!r}")
        if response.status_code >= 500:
            self.errors.append(f"{method.upper()} {url}: {response.status_code}")
        self.visits.append(Visit(method, url, response.status_code, pattern))
        return response

    def statuses(self) -> Counter:
        return Counter(visit.status for visit in self.visits)


def url_name(model_admin, page: str) -> str:
    opts = model_admin.model._meta
    return f"{opts.app_label}_{opts.model_name}_{page}"


def autocomplete_fields():
    """(app label, model name, field name) of every autocomplete widget, on admins and their inlines."""
    for model, model_admin in admin.site._registry.items():
        for owner in (model_admin, *(inline(model, admin.site) for inline in model_admin.inlines)):
            for name in owner.autocomplete_fields:
                yield owner.model._meta.app_label, owner.model._meta.model_name, name


def walk_site(walk: Walk, objects_by_model: dict, users: list) -> None:
    """Request every admin URL: site pages, app pages, each model's pages and actions, for every object."""
    for page in SITE_PAGES:
        walk.request(page, reverse(f"admin:{page}"))
    for label in sorted({model._meta.app_label for model in admin.site._registry}):
        walk.request("app_list", reverse("admin:app_list", args=[label]))
    walk.request(CATCH_ALL, "/admin/no/such/page/")
    for app_label, model_name, field_name in autocomplete_fields():
        for term in ("", "a", "canary"):
            query = {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": term}
            walk.request("autocomplete", reverse("admin:autocomplete"), data=query)
    for model, model_admin in admin.site._registry.items():
        objects = objects_by_model.get(model, [])
        walk_changelist(walk, model_admin, objects)
        walk.request(url_name(model_admin, "add"), reverse(f"admin:{url_name(model_admin, 'add')}"))
        content_type = ContentType.objects.get_for_model(model)
        for obj in objects:
            for page in OBJECT_PAGES:
                name = url_name(model_admin, page)
                walk.request(name, reverse(f"admin:{name}", args=[obj.pk]))
            history = getattr(model, "history", None)  # the audit trail's version pages (django_etl/audit)
            record = (
                history.filter(**{model._meta.pk.attname: obj.pk}).first() if history is not None else None
            )
            if record is not None:
                name = url_name(model_admin, "simple_history")
                walk.request(name, reverse(f"admin:{name}", args=[obj.pk, record.history_id]))
            opts = model._meta
            pattern = f"{opts.app_label}/{opts.model_name}/<path:object_id>/"
            walk.request(pattern, f"{_base(model_admin)}{obj.pk}/", follow=True)
            walk.request("view_on_site", reverse("admin:view_on_site", args=[content_type.pk, obj.pk]))
    for user in users:
        walk.request("auth_user_password_change", reverse("admin:auth_user_password_change", args=[user.pk]))
    walk_datasets(walk, objects_by_model)


def walk_datasets(walk: Walk, objects_by_model: dict) -> None:
    """The lineage dataset pages (django_etl/lineage/admin.py): the index, and every dataset a task run names."""
    from django_etl.lineage.datasets import keys_of
    from django_etl.runs.models import TaskRun

    walk.request("lineage_datasets", reverse("admin:lineage_datasets"))
    keys = {key for task_run in objects_by_model.get(TaskRun, []) for key in keys_of(task_run)}
    for key in sorted(keys | {"no such dataset"}):
        walk.request("lineage_dataset", reverse("admin:lineage_dataset"), data={"key": key})


def _base(model_admin) -> str:
    return reverse(f"admin:{url_name(model_admin, 'changelist')}")


def walk_changelist(walk: Walk, model_admin, objects) -> None:
    """The changelist, every link it offers (filters, sorting, dates), a search, and each action it lists."""
    name = url_name(model_admin, "changelist")
    base = _base(model_admin)
    response = walk.request(name, base)
    if response.status_code != 200:
        return
    page = response.content.decode()
    for query in sorted(set(LINK.findall(page))):
        walk.request(name, base + query.replace("&amp;", "&"))
    walk.request(name, base + "?q=b")  # matches many of B's names: any row of B shown would carry the canary
    selected = [str(obj.pk) for obj in objects]
    for action in sorted(set(ACTION_OPTION.findall(page))):
        walk.request(
            f"{name}:{action}", base, data={"action": action, "_selected_action": selected}, method="post"
        )
