"""Health checks of the compose services: a URL answers with a 2xx, or the two databases accept a query.

    python -m deploy.healthcheck http://localhost:8080/api/v2/monitor/health
    python -m deploy.healthcheck --databases

Exit status 0 when healthy, 1 otherwise with the reason on stderr (what ``docker compose ps`` shows). The
image has no curl; this costs a Python start (about 50 ms), not Airflow's or Django's import.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request


def check_url(url: str, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        if not 200 <= response.status < 300:
            raise OSError(f"{url} answered {response.status}")


def check_databases(timeout: float) -> None:
    """Django's DATABASE_URL and Airflow's metadata database (SQLAlchemy URL) each run ``SELECT 1``."""
    import psycopg

    for name in ("DATABASE_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        url = os.environ.get(name, "")
        if not url:
            raise OSError(f"{name} is not set")
        url = url.replace("postgresql+psycopg2://", "postgresql://").replace(
            "postgresql+psycopg://", "postgresql://"
        )
        with psycopg.connect(url, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="a URL that must answer 2xx")
    parser.add_argument("--databases", action="store_true", help="Django's and Airflow's databases answer")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per check (default 5)")
    args = parser.parse_args(argv)
    if not args.url and not args.databases:
        parser.error("give a URL or --databases")
    try:
        if args.url:
            check_url(args.url, args.timeout)
        if args.databases:
            check_databases(args.timeout)
    except Exception as exc:
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
