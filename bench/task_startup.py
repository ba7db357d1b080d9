"""What a task process pays before its first write to Django: a fresh interpreter (KubernetesExecutor, or
``execute_tasks_new_python_interpreter``) against a process forked from a warmed-up parent (LocalExecutor, Celery's
pool processes with airflow_plugin.celery_config).

    python bench/task_startup.py [--runs 7]

Each figure is the median wall time of ``--runs`` fresh processes, the stages interleaved so the machine's load
hits them alike: (1) ``python -c pass``; (2) + importing Airflow's task runner (what every task process imports);
(3) + ``django.setup()`` of this project's settings; (4) + the first database round trip (connect, ``SELECT 1``).
Then a child forked from a parent that did (2) and (3): fork to first round trip. PostgreSQL at
TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres); no table is read or written.
Figures: docs/benchmarks.md and docs/deployment.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES = {
    "interpreter": "pass",
    "task runner": "import airflow.sdk.execution_time.task_runner",
    "django setup": (
        "import airflow.sdk.execution_time.task_runner\n"
        "from django_etl.startup import setup_django; setup_django()"
    ),
    "first write": (
        "import airflow.sdk.execution_time.task_runner\n"
        "from django_etl.startup import setup_django; setup_django()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor: cursor.execute('SELECT 1')"
    ),
}


def environment() -> dict[str, str]:
    from cryptography.fernet import Fernet

    server = os.environ.get("TEST_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ETL_", "AIRFLOW__DATABASE"))}
    env.update(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        DATABASE_URL=server,
        ETL_CREDENTIAL_KEYS=f"bench:{Fernet.generate_key().decode()}",
        PYTHONPATH=str(REPO),
    )
    return env


def fresh(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - started


def forked(runs: int, env: dict[str, str]) -> list[float]:
    """Fork-to-first-round-trip in children of this process, once it imported Airflow and set Django up."""
    os.environ.update(env)
    import airflow.sdk.execution_time.task_runner  # noqa: F401

    from django_etl.startup import setup_django

    setup_django()
    from django.db import connection

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            os._exit(0)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = environment()
    print(f"load before: {os.getloadavg()[0]:.2f} (1-minute average, {os.cpu_count()} cores)")
    samples: dict[str, list[float]] = {name: [] for name in STAGES}
    for _ in range(args.runs):
        for name, code in STAGES.items():
            samples[name].append(fresh(code, env))
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    previous = 0.0
    for name, value in medians.items():
        print(f"fresh interpreter, {name:13} median {value:7.0f} ms  (+{value - previous:6.0f} ms)")
        previous = value
    fork = statistics.median(forked(args.runs, env)) * 1000
    print(f"forked from a warmed-up parent, fork -> first write: median {fork:.0f} ms")
    django = medians["first write"] - medians["task runner"]
    print(
        f"a fresh interpreter pays {medians['first write']:.0f} ms per task before its first write, "
        f"{django:.0f} ms of it Django's set-up and connection; a forked child {fork:.0f} ms"
    )
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
