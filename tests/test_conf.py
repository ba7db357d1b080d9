"""ETL_* settings: declared once, parsed with clear errors, the same value with or without Django."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from django_etl import conf

REPO = Path(__file__).resolve().parent.parent


def test_every_etl_setting_is_exported_to_django_settings(settings):
    for name in conf.SETTINGS:
        assert hasattr(settings, name), name


def test_every_etl_setting_is_documented():
    documented = (REPO / "docs" / "configuration.md").read_text()
    missing = [name for name in conf.SETTINGS if f"`{name}`" not in documented]
    assert missing == []


def test_every_etl_name_read_in_the_code_is_declared():
    """No ETL_* setting is read that conf.py does not declare (one place for names, defaults, parsers)."""
    import re

    declared = set(conf.SETTINGS)
    used: set[str] = set()
    for folder in ("django_etl", "airflow_plugin"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            used.update(re.findall(r"\b(ETL_[A-Z0-9_]+)\b", text))
    assert sorted(used - declared) == []


def test_value_follows_a_django_override(settings):
    settings.ETL_RECORDER_TIMEOUT = 1.5
    assert conf.value("ETL_RECORDER_TIMEOUT") == 1.5


@pytest.mark.parametrize(("raw", "expected"), [("yes", True), ("OFF", False), (" 1 ", True), ("", True)])
def test_setting_parses_booleans(raw, expected):
    assert conf.SETTINGS["ETL_WARM_DJANGO"].from_environment({"ETL_WARM_DJANGO": raw}) is expected


def test_setting_bad_value_names_the_variable_and_the_fix():
    with pytest.raises(conf.SettingError, match=r"ETL_RECORDER_TIMEOUT='soon'.*docs/configuration.md"):
        conf.SETTINGS["ETL_RECORDER_TIMEOUT"].from_environment({"ETL_RECORDER_TIMEOUT": "soon"})
    with pytest.raises(conf.SettingError, match="ETL_WARM_DJANGO='maybe': not a boolean"):
        conf.SETTINGS["ETL_WARM_DJANGO"].from_environment({"ETL_WARM_DJANGO": "maybe"})


def test_value_without_django_reads_the_environment_and_imports_no_django(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(ETL_RECORDER_TIMEOUT="2.5", ETL_FILE_ROOTS="/a, /b", PYTHONPATH=str(REPO))
    code = (
        "import json, sys; from django_etl import conf; "
        "print(json.dumps([conf.value('ETL_RECORDER_TIMEOUT'), conf.value('ETL_FILE_ROOTS'), "
        "'django' in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    )
    assert json.loads(result.stdout) == [2.5, ["/a", "/b"], False]


def test_django_refuses_to_start_on_a_bad_etl_value(tmp_path):
    env = dict(os.environ, ETL_STAGING_RETENTION_DAYS="a week", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    assert result.returncode != 0
    assert "ETL_STAGING_RETENTION_DAYS='a week'" in result.stderr
