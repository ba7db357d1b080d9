"""System checks (``manage.py check``) for what connectors and steps need: key ring, file roots, staging."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

STAGING_SCHEMES = ("", "file", "s3")


@checks.register(checks.Tags.security)
def check_key_ring(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The credential key ring parses, holds only valid Fernet keys and names a current key it holds."""
    from django_etl.connectors.keyring import build_keyring

    try:
        build_keyring(
            settings.ETL_CREDENTIAL_KEYS,
            settings.ETL_CREDENTIAL_KEYS_FILE,
            settings.ETL_CREDENTIAL_CURRENT_KEY,
        )
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="Fix ETL_CREDENTIAL_KEYS / ETL_CREDENTIAL_KEYS_FILE / ETL_CREDENTIAL_CURRENT_KEY "
                "(docs/credentials.md).",
                id="connectors.E001",
            )
        ]
    return []


@checks.register()
def check_file_roots(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every ETL_FILE_ROOTS entry is an absolute folder apart from the platform's own files.

    A missing one is reported by ``check --deploy``.
    """
    from django_etl.dataplane.files import path_refusal

    messages: list[checks.CheckMessage] = []
    for root in settings.ETL_FILE_ROOTS:
        path = Path(root)
        if not path.is_absolute():
            messages.append(
                checks.Error(
                    f"ETL_FILE_ROOTS entry {root!r} is not an absolute path",
                    hint="Give each file root as an absolute folder: a relative one would depend on the "
                    "working directory of each Airflow process.",
                    id="connectors.E002",
                )
            )
        elif path.exists() and not path.is_dir():
            messages.append(
                checks.Error(f"ETL_FILE_ROOTS entry {root!r} is not a folder", id="connectors.E003")
            )
        else:
            # The connectors' own rule (dataplane.files.path_refusal): staging, the dags folder, the
            # platform's database files, Airflow's home and the key ring are never inside a file root.
            reason = path_refusal(root)
            if reason:
                messages.append(
                    checks.Error(
                        f"ETL_FILE_ROOTS entry {reason}",
                        hint="A file connector could then read or write the platform's own files (another "
                        "pipeline's staged data, DAG files, databases): keep them outside every file root.",
                        id="connectors.E007",
                    )
                )
    return messages


@checks.register(checks.Tags.security)
def check_network_policy(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """ETL_NETWORK_ALLOW, ETL_PLATFORM_SERVERS and ETL_POSTGRES_ALLOWED_OPTIONS parse (docs/security.md)."""
    from django_etl.dataplane import netpolicy
    from django_etl.dataplane.postgres import OPERATOR_OPTIONS
    from django_etl.errors import ConfigurationError

    messages: list[checks.CheckMessage] = []
    try:
        netpolicy.parse_allow_list(settings.ETL_NETWORK_ALLOW, "ETL_NETWORK_ALLOW")
        for entry in settings.ETL_PLATFORM_SERVERS:
            netpolicy.split_host_port(entry, "ETL_PLATFORM_SERVERS")
    except ConfigurationError as exc:
        messages.append(checks.Error(str(exc), id="connectors.E008"))
    unknown = sorted(set(settings.ETL_POSTGRES_ALLOWED_OPTIONS) - OPERATOR_OPTIONS)
    if unknown:
        messages.append(
            checks.Error(
                f"ETL_POSTGRES_ALLOWED_OPTIONS names {', '.join(unknown)}, which cannot be opened",
                hint=f"It may list only {', '.join(sorted(OPERATOR_OPTIONS))}.",
                id="connectors.E009",
            )
        )
    return messages


@checks.register(deploy=True)
def check_file_roots_exist(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """In a deployment every file root exists (the embedded default creates its own when first used)."""
    return [
        checks.Warning(
            f"ETL_FILE_ROOTS entry {root!r} does not exist",
            hint="File connectors under it fail their connection test until it is created.",
            id="connectors.W001",
        )
        for root in settings.ETL_FILE_ROOTS
        if Path(root).is_absolute() and not Path(root).exists()
    ]


@checks.register()
def check_staging_location(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """ETL_STAGING_URL is a local folder or s3://bucket[/prefix]."""
    url = str(settings.ETL_STAGING_URL)
    parsed = urlparse(url)
    scheme = parsed.scheme if len(parsed.scheme) > 1 else ""  # "C:\\..." has a one-letter scheme
    if scheme not in STAGING_SCHEMES:
        return [
            checks.Error(
                f"ETL_STAGING_URL {url!r} has scheme {scheme!r}; expected a folder or s3://bucket/prefix",
                id="connectors.E004",
            )
        ]
    if scheme == "s3":
        if not parsed.netloc:
            return [checks.Error(f"ETL_STAGING_URL {url!r} names no bucket", id="connectors.E005")]
        return []
    folder = Path(parsed.path if scheme == "file" else url)
    if not folder.is_absolute():
        return [
            checks.Error(
                f"ETL_STAGING_URL {url!r} is not an absolute folder",
                hint="Every Airflow process must find the same staging folder, whatever its working directory.",
                id="connectors.E006",
            )
        ]
    return []  # a staging folder inside a file root is check_file_roots' connectors.E007
