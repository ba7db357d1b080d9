"""Fixtures for the console: the admin tenants (tests/admin/conftest.py) and a busy organization."""

from __future__ import annotations

from tests.admin.conftest import root, tenants  # noqa: F401  (the two-organization fixtures)
