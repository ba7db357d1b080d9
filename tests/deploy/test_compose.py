"""docker-compose.yaml is a valid compose file (the compose specification's JSON schema, vendored from
compose-spec/compose-go schema/compose-spec.json) and keeps the rules of the deployment: init first, health checks
everywhere, secrets only from .env, volumes for what must outlive a container, the admin under gunicorn."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from deploy.services import read_env_file
from tests.support import compose

HERE = Path(__file__).resolve().parent
SCHEMA = json.loads((HERE / "compose-spec.json").read_text())
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|_KEYS?$|TOKEN|KEY_ID")
URL_USERINFO = re.compile(r"://(?P<user>[^:/@]*):(?P<password>[^@/]+)@")
GOOD_CONDITIONS = {"service_healthy", "service_completed_successfully"}


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA)


def schema_errors(document) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_specification():
    assert schema_errors(compose.raw()) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["services"]["init"].update(restart_policy="never"),  # not a service key
        lambda d: d["services"]["admin"]["depends_on"]["init"].update(condition="service_done"),
        lambda d: d["services"]["postgres"]["healthcheck"].update(interval=5),  # a duration is a string
        lambda d: d.update(volume={}),  # top-level typo
    ],
)
def test_compose_schema_check_refuses_a_broken_file(breakage):
    broken = copy.deepcopy(compose.raw())
    breakage(broken)
    assert schema_errors(broken)


def test_compose_every_service_has_a_health_check():
    for name, service in compose.raw()["services"].items():
        check = service.get("healthcheck") or {}
        assert not check.get("disable"), name
        assert check.get("test") and check["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_compose_services_of_our_image_wait_for_init_and_healthy_dependencies():
    services = compose.raw()["services"]
    ours = compose.our_services(compose.raw())
    assert {
        "init",
        "admin",
        "airflow-api",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    } <= set(ours)
    assert "airflow-worker" in ours
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert isinstance(rule, dict) and rule.get("condition") in GOOD_CONDITIONS, (name, dependency)
    for name, service in ours.items():
        depends = service["depends_on"]
        assert "postgres" in depends, name
        if name != "init":
            assert depends["init"]["condition"] == "service_completed_successfully", name
    assert services["init"]["restart"] == "no"
    assert services["init"]["command"] == ["python", "-m", "deploy.services", "init"]


def test_compose_has_no_literal_secret():
    text = compose.COMPOSE_FILE.read_text()
    document = compose.raw()
    blocks = [s.get("environment") or {} for s in document["services"].values()]
    for environment in blocks:
        for key, value in environment.items():
            value = str(value)
            if SECRET_NAME.search(key) and not key.startswith(("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER",)):
                # Required from .env (``${NAME:?…}``), or optional with an empty default (``${NAME:-}``).
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*|:-)\}", value), f"{key} is not taken from .env"
            for match in URL_USERINFO.finditer(value):
                assert match["password"].startswith("${"), f"{key} holds a literal password"
    # Nothing that looks like a key or password is written in the file itself.
    assert not re.search(r"(?i)(password|secret)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9+/=_-]{6,}\b(?<!\})", text)


def test_compose_required_variables_are_all_in_env_example():
    example = read_env_file(compose.REPO / ".env.example")
    assert compose.required_variables() - set(example) == set()
    # Filled in, it interpolates; without one required value, compose (and our reader) refuses.
    filled = {name: "x" for name in example} | {name: "x" for name in compose.required_variables()}
    assert compose.load(filled)["services"]["init"]["environment"]["DJANGO_SUPERUSER_PASSWORD"] == "x"
    missing = dict(filled)
    del missing["DJANGO_SECRET_KEY"]
    with pytest.raises(compose.ComposeError, match="DJANGO_SECRET_KEY"):
        compose.load(missing)


def test_compose_volumes_keep_dags_var_airflow_home_and_staging():
    document = compose.raw()
    declared = set(document["volumes"])
    assert {"pgdata", "dags", "var", "airflow-home", "staging"} <= declared
    for name, service in compose.our_services(document).items():
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        env = service["environment"]
        assert mounts[env["ETL_DAGS_FOLDER"]] == "dags", name
        assert mounts[env["ETL_VAR_DIR"]] == "var", name
        assert mounts[env["AIRFLOW_HOME"]] == "airflow-home", name
        # Airflow's generated files (passwords, logs) and the var folder's demo files live on volumes.
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(env["AIRFLOW_HOME"] + "/")
        for root in env["ETL_FILE_ROOTS"].split(","):
            assert root.startswith((env["ETL_VAR_DIR"] + "/", "/app/demo_data")), (name, root)
        # Staging is shared object storage, reached by every worker.
        assert (
            env["ETL_STAGING_URL"].startswith("s3://")
            and env["ETL_STAGING_S3_ENDPOINT_URL"] == "http://minio:9000"
        )
    assert any(v.startswith("staging:") for v in document["services"]["minio"]["volumes"])
    assert any(v.startswith("pgdata:") for v in document["services"]["postgres"]["volumes"])


def test_compose_production_settings():
    document = compose.raw()
    services = document["services"]
    env = services["admin"]["environment"]
    assert services["admin"]["command"][0] == "gunicorn"
    assert env["DJANGO_DEBUG"] == "false"
    assert env["DJANGO_EMAIL_BACKEND"].endswith("smtp.EmailBackend")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert (
        env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        and "@redis:6379/" in env["AIRFLOW__CELERY__BROKER_URL"]
    )
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host's loopback"


def test_compose_commands_exist_in_the_image_environment():
    bin_dir = Path(sys.executable).parent
    for name, service in compose.our_services(compose.raw()).items():
        program = service["command"][0]
        assert (bin_dir / program).exists(), f"{name}: {program} is not installed by uv sync"
    result = subprocess.run(
        [sys.executable, "-m", "deploy.services", "--help"], capture_output=True, text=True, cwd=compose.REPO
    )
    assert result.returncode == 0 and "init" in result.stdout


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {line.strip() for line in (compose.REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".env", "var/", "dags/generated/", "**/*.sqlite3", ".git"} <= ignored
    dockerfile = (compose.REPO / "Dockerfile").read_text()
    assert "uv sync --locked --no-dev" in dockerfile and "USER " in dockerfile
    assert ":latest" not in dockerfile  # a pinned installer
