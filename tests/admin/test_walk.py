"""Every admin URL, walked as each role of Acme: nothing of organization B shows, and B's ids give 404.

Organization B's objects carry canary names (tests/admin/conftest.py). The walk requests every URL of
``admin.site.get_urls()`` — changelists with every filter, sort and date link they offer, a search, every
action they list (run on Acme's and B's objects together), add, change, history and delete pages, the object
redirect, view-on-site, password pages and every autocomplete — and checks each response.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.admin.conftest import CANARY, ROLES
from tests.admin.walk import Walk, pattern_names, walk_site

pytestmark = pytest.mark.django_db

# Requests each role's walk makes, and how many of them must show a page: the walk cannot shrink unnoticed.
MIN_REQUESTS = 250
MIN_PAGES = {"viewer": 90, "editor": 95, "admin": 110, "owner": 120}


def objects_by_model(tenants) -> dict:
    grouped = defaultdict(list)
    for obj in dict.fromkeys([*tenants.a.objects, *tenants.b.objects]):
        grouped[type(obj)].append(obj)
    return grouped


@pytest.mark.parametrize("role", ROLES)
def test_admin_walk_shows_nothing_of_another_organization(client, tenants, root, role):
    import django_etl.urls  # noqa: F401  (registers the admins)
    from django_etl.connectors.models import Credential
    from django_etl.monitoring.models import Alert

    user = tenants.a.members[role]
    client.force_login(user)
    b_ids = tenants.ids_of_b()
    b_credential = next(o for o in tenants.b.objects if isinstance(o, Credential))
    b_alert = next(o for o in tenants.b.objects if isinstance(o, Alert))
    walk = Walk(client, forbidden=[CANARY, *b_ids])
    users = [root, *{u.pk: u for u in [*tenants.a.members.values(), *tenants.b.members.values()]}.values()]
    walk_site(walk, objects_by_model(tenants), users)

    assert not walk.errors, walk.errors
    assert not walk.leaks, "\n".join(walk.leaks[:30])
    assert pattern_names() - walk.covered == set(), "admin URLs the walk does not request"
    for visit in walk.visits:
        if any(object_id in visit.url for object_id in b_ids):
            assert visit.status == 404, visit
    statuses = walk.statuses()
    assert len(walk.visits) >= MIN_REQUESTS, statuses
    assert statuses[200] >= MIN_PAGES[role], statuses
    # The actions ran on B's objects too (resolve, re-encrypt, delete…): none of them reached B.
    before = b_credential.encrypted_data
    b_credential.refresh_from_db()
    b_alert.refresh_from_db()
    assert b_credential.encrypted_data == before and not b_alert.is_resolved
    assert all(type(obj)._default_manager.filter(pk=obj.pk).exists() for obj in tenants.b.objects)
