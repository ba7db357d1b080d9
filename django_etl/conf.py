"""Every ETL_* setting declared once — name, default, parser, meaning — readable with or without Django.

``django_etl/settings.py`` re-exports them as Django settings. Code that runs before ``django.setup()`` (DAG
parse time, the listener's warm-up, the recorder's timeout, the data plane in a bare process) calls
:func:`value`, which answers from Django's settings once they are configured (so tests' ``settings``
overrides and a deployment's settings module win) and from the environment otherwise. No Django import here.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingError(ValueError):
    """An environment variable holds a value its setting cannot parse; the message names both."""


def parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("not a boolean; use true or false")


def parse_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_seconds(raw: str) -> float:
    seconds = float(raw)
    if seconds < 0:
        raise ValueError("must be a number of seconds, zero or more")
    return seconds


def parse_hours(raw: str) -> float:
    hours = float(raw)
    if not hours > 0:
        raise ValueError("must be a number of hours, more than zero")
    return hours


def parse_text(raw: str) -> str:
    return raw.strip()


def parse_count(raw: str) -> int:
    count = int(raw)
    if count < 0:
        raise ValueError("must be a whole number, zero or more")
    return count


def parse_size(raw: str) -> str:
    """A DuckDB size such as 512MB, 2GiB (what its memory_limit and max_temp_directory_size accept)."""
    text = raw.strip().replace(" ", "")
    if not re.fullmatch(r"\d+(\.\d+)?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text, flags=re.IGNORECASE):
        raise ValueError("must be a size such as 512MB or 2GiB")
    return text


def parse_positive_int(raw: str) -> int:
    number = int(raw)
    if number < 1:
        raise ValueError("must be a whole number, 1 or more")
    return number


def parse_positive_number(raw: str) -> float:
    number = float(raw)
    if not number > 0 or number != number or number == float("inf"):
        raise ValueError("must be a number more than zero")
    return number


def parse_share(raw: str) -> float:
    share = float(raw)
    if not 0 < share <= 1:
        raise ValueError("must be a share of the whole, more than 0 and at most 1 (0.9 for 90 %)")
    return share


@dataclass(frozen=True)
class Setting:
    """One ETL_* setting: its environment variable is its name; ``default`` may depend on ETL_VAR_DIR."""

    name: str
    default: Callable[[], Any]
    parse: Callable[[str], Any]
    doc: str

    def from_environment(self, environ: dict[str, str] | None = None) -> Any:
        environ = os.environ if environ is None else environ
        raw = environ.get(self.name, "")
        if raw.strip() == "":
            return self.default()
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise SettingError(f"{self.name}={raw!r}: {exc} (docs/configuration.md)") from None


def var_dir() -> Path:
    """Embedded state (SQLite database, local staging, the demo's Airflow home): one git-ignored folder."""
    return SETTINGS["ETL_VAR_DIR"].from_environment()


_DECLARED = [
    Setting("ETL_VAR_DIR", lambda: BASE_DIR / "var", Path, "Folder of the embedded state."),
    Setting(
        "ETL_CREDENTIAL_KEYS",
        lambda: "",
        parse_text,
        "Credential key ring: 'id:fernet-key' pairs separated by commas (docs/credentials.md).",
    ),
    Setting("ETL_CREDENTIAL_KEYS_FILE", lambda: "", parse_text, "The key ring as a JSON file instead."),
    Setting("ETL_CREDENTIAL_CURRENT_KEY", lambda: "", parse_text, "Key id new secrets are encrypted with."),
    Setting(
        "ETL_CREDENTIAL_EXPIRY_WARNING_DAYS",
        lambda: 14,
        parse_positive_int,
        "Days before a credential's expires_at that check_credentials raises its warning alert.",
    ),
    Setting("ETL_DAGS_FOLDER", lambda: BASE_DIR / "dags" / "generated", Path, "Where generate_dags writes."),
    Setting(
        "ETL_REGENERATE_ON_SAVE",
        lambda: True,
        parse_bool,
        "Saving a pipeline or its steps rewrites its DAG file after commit.",
    ),
    Setting(
        "ETL_GENERATE_TRIAL_BUILD",
        lambda: True,
        parse_bool,
        "generate_dags builds each new or changed DAG with Airflow before writing it.",
    ),
    Setting(
        "ETL_MAINTENANCE_SCHEDULE",
        lambda: "*/15 * * * *",
        parse_text,
        "Schedule of the maintenance DAG that runs generate_dags (a no-op when nothing changed); 'off': manual.",
    ),
    Setting(
        "ETL_CREDENTIAL_EXPIRY_SCHEDULE",
        lambda: "0 6 * * *",
        parse_text,
        "Schedule of the etl_credential_expiry DAG (check_credentials: expiry warnings); 'off': manual.",
    ),
    Setting(
        "ETL_ALERT_DELIVERY_SCHEDULE",
        lambda: "*/2 * * * *",
        parse_text,
        "Schedule of the etl_alert_delivery DAG (deliver_alerts: sends the alert outbox); 'off': manual.",
    ),
    Setting(
        "ETL_ALERT_DELIVERY_ATTEMPTS",
        lambda: 8,
        parse_positive_int,
        "Attempts at one alert delivery (email or webhook) before it is marked failed.",
    ),
    Setting(
        "ETL_ALERT_DELIVERY_BACKOFF",
        lambda: 60.0,
        parse_positive_number,
        "Seconds before an alert delivery that failed is tried again; doubled after each failed attempt.",
    ),
    Setting(
        "ETL_ALERT_DELIVERY_MAX_BACKOFF",
        lambda: 3600.0,
        parse_positive_number,
        "The longest wait, in seconds, between two attempts at an alert delivery.",
    ),
    Setting(
        "ETL_STAGING_URL",
        lambda: str(var_dir() / "staging"),
        parse_text,
        "Where steps stage datasets: a folder, or s3://bucket/prefix.",
    ),
    Setting(
        "ETL_STAGING_S3_ENDPOINT_URL", lambda: "", parse_text, "S3 API endpoint of s3:// staging (MinIO...)."
    ),
    Setting(
        "ETL_STAGING_S3_ACCESS_KEY_ID",
        lambda: "",
        parse_text,
        "Access key id of s3:// staging (its own: no connector can use it); empty: the AWS SDK's chain.",
    ),
    Setting("ETL_STAGING_S3_SECRET_ACCESS_KEY", lambda: "", parse_text, "Secret key of s3:// staging."),
    Setting(
        "ETL_STAGING_RETENTION_DAYS",
        lambda: 7.0,
        float,
        "Days a failed run's staged data is kept before purge_staging deletes it.",
    ),
    Setting(
        "ETL_FILE_ROOTS",
        lambda: [str(BASE_DIR / "demo_data"), str(var_dir() / "exports")],
        parse_list,
        "Comma-separated folders file connectors may use.",
    ),
    Setting(
        "ETL_NETWORK_ALLOW",
        lambda: [],
        parse_list,
        "Networks or address[:port] entries every organization's connectors may reach beyond public addresses.",
    ),
    Setting(
        "ETL_PLATFORM_SERVERS",
        lambda: [],
        parse_list,
        "host:port of platform servers no connector may reach, beyond those found in the settings.",
    ),
    Setting(
        "ETL_POSTGRES_ALLOWED_OPTIONS",
        lambda: [],
        parse_list,
        "libpq options (hostaddr, passfile, service, sslcert, sslkey, sslrootcert...) connectors may set.",
    ),
    Setting(
        "ETL_SOURCE_STATEMENT_TIMEOUT",
        lambda: 3600.0,
        parse_seconds,
        "Seconds one query against a source database (extract, preview) may run; 0 for no limit.",
    ),
    Setting(
        "ETL_RECORDER_TIMEOUT",
        lambda: 5.0,
        parse_seconds,
        "Seconds a task, callback or the scheduler waits for one write-back to Django.",
    ),
    Setting(
        "ETL_RECORDER_DATABASE_URL",
        lambda: "",
        parse_text,
        "Database URL write-back connects to instead of DATABASE_URL (a connection pooler); empty: the same.",
    ),
    Setting(
        "ETL_CATCHUP_SCHEDULE",
        lambda: "*/10 * * * *",
        parse_text,
        "Schedule of the catch-up DAG that fills write-back gaps from Airflow's REST API; 'off': manual.",
    ),
    Setting(
        "ETL_CATCHUP_WINDOW_HOURS",
        lambda: 24.0,
        parse_hours,
        "How far back (hours of a DAG run's last change in Airflow) the catch-up reconciler looks.",
    ),
    Setting(
        "ETL_DUCKDB_MEMORY_LIMIT",
        lambda: "512MB",
        parse_size,
        "Memory of each transform's or check's DuckDB connection; it spills to disk beyond (docs/security.md).",
    ),
    Setting("ETL_DUCKDB_THREADS", lambda: 2, parse_positive_int, "Threads of each DuckDB connection."),
    Setting(
        "ETL_DUCKDB_MAX_TEMP_SIZE",
        lambda: "10GB",
        parse_size,
        "Disk a DuckDB connection may spill to (its own temporary folder, removed afterwards).",
    ),
    Setting(
        "ETL_DUCKDB_TIMEOUT",
        lambda: 3600.0,
        parse_seconds,
        "Wall-clock seconds the SQL of one transform or check step may run before it is interrupted; 0: no limit.",
    ),
    Setting(
        "ETL_MIGRATION_LOCK_TIMEOUT",
        lambda: 5.0,
        parse_seconds,
        "Seconds a migration statement waits for a lock before it gives up (and is retried); 0: no limit.",
    ),
    Setting(
        "ETL_MIGRATION_STATEMENT_TIMEOUT",
        lambda: 300.0,
        parse_seconds,
        "Seconds one migration statement may run (concurrent index builds excepted); 0: no limit.",
    ),
    Setting(
        "ETL_MIGRATION_RETRIES",
        lambda: 3,
        parse_count,
        "How many times a migration that hit the lock timeout runs again.",
    ),
    Setting(
        "ETL_MIGRATION_BACKUP_DIR",
        lambda: var_dir() / "backups",
        Path,
        "Folder of safe_migrate's backups (created owner-only).",
    ),
    Setting(
        "ETL_WARM_DJANGO",
        lambda: True,
        parse_bool,
        "Airflow components set Django up when they start, so forked task processes inherit it.",
    ),
    Setting(
        "ETL_WRITEBACK",
        lambda: True,
        parse_bool,
        "Airflow's events are recorded in Django; false only to measure write-back's cost (no run history).",
    ),
    Setting(
        "ETL_AIRFLOW_API_URL",
        lambda: "",
        parse_text,
        "Base URL of Airflow's api-server (REST v2), e.g. http://127.0.0.1:8080; empty: Django does not control Airflow.",
    ),
    Setting("ETL_AIRFLOW_USERNAME", lambda: "", parse_text, "Airflow service account Django signs in as."),
    Setting("ETL_AIRFLOW_PASSWORD", lambda: "", parse_text, "Password of that service account."),
    Setting(
        "ETL_AIRFLOW_UI_URL",
        lambda: "",
        parse_text,
        "Airflow's UI as people reach it, for links from the admin; empty: ETL_AIRFLOW_API_URL.",
    ),
    Setting(
        "ETL_AIRFLOW_API_TIMEOUT",
        lambda: 5.0,
        parse_seconds,
        "Seconds one call from Django to Airflow's API may take before the admin says Airflow is unreachable.",
    ),
    Setting(
        "ETL_ADMIN_URL",
        lambda: "",
        parse_text,
        "The Django admin's base URL (e.g. http://127.0.0.1:8000), for links from DAG docs back to pipelines.",
    ),
    Setting(
        "ETL_WEBHOOK_MAX_BYTES",
        lambda: 65536,
        parse_positive_int,
        "Largest webhook trigger body accepted, in bytes.",
    ),
    Setting(
        "ETL_WEBHOOK_REPLAY_SECONDS",
        lambda: 300.0,
        parse_seconds,
        "How far a webhook's signed timestamp may be from now; older or reused signatures are refused.",
    ),
    Setting(
        "ETL_WEBHOOK_RATE_LIMIT",
        lambda: 30,
        parse_positive_int,
        "Webhook triggers accepted per pipeline per minute.",
    ),
    Setting(
        "ETL_MONITORING_ENABLED",
        lambda: True,
        parse_bool,
        "Performance, volume and resource alerts after each run (docs/alerts.md); a pipeline may turn them off.",
    ),
    Setting(
        "ETL_BASELINE_WINDOW",
        lambda: 30,
        parse_positive_int,
        "How many recent successful runs of a pipeline its duration, throughput and volume baselines use.",
    ),
    Setting(
        "ETL_BASELINE_MIN_HISTORY",
        lambda: 10,
        parse_positive_int,
        "Successful runs a pipeline (or step) needs before it is compared with its baseline; no alert before.",
    ),
    Setting(
        "ETL_BASELINE_TOLERANCE",
        lambda: 3.0,
        parse_positive_number,
        "How many scaled MADs (robust standard deviations) from the median a value must be to be flagged.",
    ),
    Setting(
        "ETL_BASELINE_MIN_RATIO",
        lambda: 1.5,
        parse_positive_number,
        "And how many times the median it must be (or below median / ratio): a very stable history is not noise.",
    ),
    Setting(
        "ETL_BASELINE_MIN_SECONDS",
        lambda: 1.0,
        parse_seconds,
        "Durations under this many seconds are never called slow (a step's timing below it is noise).",
    ),
    Setting(
        "ETL_VOLUME_RATIO",
        lambda: 2.0,
        parse_positive_number,
        "Rows this many times above or below their median (and past the tolerance): a DATA_QUALITY alert.",
    ),
    Setting(
        "ETL_RUN_OVERDUE_RATIO",
        lambda: 2.0,
        parse_positive_number,
        "check_runs flags a run still running past this many times its pipeline's median duration.",
    ),
    Setting(
        "ETL_RUN_MAX_SECONDS",
        lambda: 0,
        parse_count,
        "Hard limit of any run's duration (flagged while running and at the end); 0: none.",
    ),
    Setting(
        "ETL_RUN_CHECKS_SCHEDULE",
        lambda: "*/5 * * * *",
        parse_text,
        "Schedule of the etl_run_checks DAG (check_runs: runs still running far past their baseline); 'off': manual.",
    ),
    Setting(
        "ETL_TASK_MEMORY_LIMIT_MB",
        lambda: 0,
        parse_count,
        "Peak memory (MiB) of one task above which a RESOURCE_EXHAUSTION alert is raised; 0: none.",
    ),
    Setting(
        "ETL_TASK_MEMORY_SHARE",
        lambda: 0.9,
        parse_share,
        "Share of the worker's memory (its cgroup limit, else RAM) one task's peak may reach before an alert.",
    ),
    Setting(
        "ETL_STAGING_MIN_FREE_MB",
        lambda: 1024,
        parse_count,
        "Free space (MiB) of local staging under which a RESOURCE_EXHAUSTION alert is raised; 0: no check.",
    ),
    Setting(
        "ETL_MAINTENANCE_ALERTS",
        lambda: True,
        parse_bool,
        "A failed run of the maintenance DAG raises an Alert in Django.",
    ),
    Setting(
        "ETL_PARTITIONS_SCHEDULE",
        lambda: "30 2 * * *",
        parse_text,
        "Schedule of the etl_partitions DAG (manage_partitions: months ahead, retention, the check); 'off': manual.",
    ),
    Setting(
        "ETL_RUN_ROLLUPS_SCHEDULE",
        lambda: "*/10 * * * *",
        parse_text,
        "Schedule of the etl_run_rollups DAG (rollup_runs: the dashboard's daily step sums); 'off': manual.",
    ),
    Setting(
        "ETL_PARTITIONS_MONTHS_AHEAD",
        lambda: 3,
        parse_count,
        "How many months after this one the etl_partitions job keeps task_runs partitions for.",
    ),
    Setting(
        "ETL_TASK_RUNS_RETENTION_MONTHS",
        lambda: 0,
        parse_count,
        "Months of task runs kept live; older months are archived, detached and dropped. 0: keep everything.",
    ),
    Setting(
        "ETL_PARTITION_ARCHIVE_URL",
        lambda: str(var_dir() / "archive" / "task_runs"),
        parse_text,
        "Where archived months go: a folder, or s3://bucket/prefix (staging's S3 endpoint and keys).",
    ),
]

SETTINGS: dict[str, Setting] = {setting.name: setting for setting in _DECLARED}


def from_environment(name: str) -> Any:
    """The setting as the environment gives it (what ``settings.py`` exports)."""
    return SETTINGS[name].from_environment()


def value(name: str) -> Any:
    """The setting in force: Django's once its settings are configured, else the environment's."""
    setting = SETTINGS[name]
    django_conf = sys.modules.get("django.conf")
    if django_conf is not None and _django_configured(django_conf):
        return getattr(django_conf.settings, name, setting.default())
    return setting.from_environment()


def _django_configured(django_conf: Any) -> bool:
    if django_conf.settings.configured:
        return True
    # Lazy settings are configured on first access when the process names a settings module.
    return bool(os.environ.get("DJANGO_SETTINGS_MODULE"))


def exported() -> dict[str, Any]:
    """Every declared setting from the environment, for ``settings.py`` to re-export."""
    return {name: setting.from_environment() for name, setting in SETTINGS.items()}
