"""Alert thresholds: settings, then the organization's settings, then the pipeline's config; validated on save."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from django_etl.alertpolicy import resolve


def test_resolve_defaults_come_from_settings(settings):
    settings.ETL_BASELINE_MIN_HISTORY = 12
    policy = resolve({}, {})
    assert (policy.window, policy.min_history, policy.tolerance) == (30, 12, 3.0)


def test_resolve_pipeline_beats_organization_beats_settings():
    policy = resolve(
        {"monitoring": {"tolerance": 5}},
        {"monitoring": {"tolerance": 4, "window": 50, "memory_limit_mb": 256}},
    )
    assert (policy.tolerance, policy.window, policy.memory_limit_mb) == (5, 50, 256)


def test_resolve_window_never_smaller_than_min_history():
    assert resolve({"monitoring": {"window": 5, "min_history": 20}}).window == 20


def test_resolve_invalid_object_falls_back():
    assert resolve({"monitoring": {"tolerance": -1}}).tolerance == 3.0


@pytest.mark.django_db
def test_pipeline_clean_monitoring_key_errors_named(pipeline):
    pipeline.config = {"schedule": None, "monitoring": {"tolerance": 0, "windw": 10}}
    with pytest.raises(ValidationError) as caught:
        pipeline.full_clean()
    text = str(caught.value)
    assert "config.monitoring.tolerance" in text
    assert "config.monitoring.windw: unknown key" in text


@pytest.mark.django_db
def test_pipeline_clean_monitoring_key_accepted(pipeline):
    pipeline.config = {"schedule": None, "monitoring": {"min_history": 5, "memory_limit_mb": 512}}
    pipeline.full_clean()


@pytest.mark.django_db
def test_organization_clean_monitoring_settings_validated(organization):
    organization.settings = {"monitoring": {"memory_share": 2}, "theme": "dark"}
    with pytest.raises(ValidationError) as caught:
        organization.full_clean()
    assert "settings.monitoring.memory_share" in str(caught.value)
    organization.settings = {"monitoring": {"memory_share": 0.5}, "theme": "dark"}
    organization.full_clean()
