"""Start and stop the real services on one machine, without Docker: Airflow (api-server, scheduler,
dag-processor, triggerer; LocalExecutor, or CeleryExecutor with its workers; metadata on PostgreSQL) and the
Django admin under gunicorn.

``make airflow`` runs ``python -m deploy.services start`` (``make airflow EXECUTOR=celery`` adds
``--executor celery``), ``make stop`` runs ``... stop``; ``python -m deploy.services init`` only prepares
(migrations, partitions, static files, staging, DAG files, users: the compose file's init service). The environment comes
from ``.env`` (see ``.env.example``) under the process's own environment, through :func:`service_environment`,
the one place that derives what every process needs. Everything binds 127.0.0.1; every process is started in
its own session and recorded (pid and start time) under ``<home>/pids``, so ``stop`` ends exactly those process
groups and nothing else. See docs/services.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"

# Needed by every process when DEBUG is off: Django's side and Airflow's shared secrets.
REQUIRED = (
    "DATABASE_URL",
    "DJANGO_SECRET_KEY",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "ETL_AIRFLOW_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
)


EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
# Redis database of the Celery broker under `make airflow` (others on the same Redis keep theirs).
CELERY_REDIS_DB = 5


class ServicesError(RuntimeError):
    """The services cannot start as configured; the message says which variable or process, and where to look."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``#`` comments, optional quotes), as docker-compose and systemd read them."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ServicesError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


def fitted_parallelism(cores: int | None = None) -> int:
    """Task slots: one per core, at least 2 (Airflow's default of 32 forks 32 workers, Celery's 16)."""
    return max(2, cores or os.cpu_count() or 2)


def free_port() -> int:
    """A TCP port free on loopback right now (scratch services of tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def is_celery(env: dict[str, str]) -> bool:
    return env.get("AIRFLOW__CORE__EXECUTOR", "").rsplit(".", 1)[-1] == "CeleryExecutor"


def worker_names(env: dict[str, str]) -> tuple[str, ...]:
    """``worker-1`` … ``worker-N`` (ETL_CELERY_WORKERS) under the CeleryExecutor, none otherwise."""
    if not is_celery(env):
        return ()
    count = env.get("ETL_CELERY_WORKERS", "1")
    if not count.isdigit() or int(count) < 1:
        raise ServicesError(f"ETL_CELERY_WORKERS={count!r}: must be a whole number, 1 or more")
    return tuple(f"worker-{number}" for number in range(1, int(count) + 1))


def default_names(env: dict[str, str], *, admin: bool = True) -> tuple[str, ...]:
    """What runs on this machine: Airflow's components, the Celery workers if any, the admin."""
    names = ("api-server", "scheduler", "dag-processor", "triggerer", *worker_names(env))
    return (*names, "admin") if admin else names


def service_environment(base: dict[str, str], home: Path) -> dict[str, str]:
    """Everything Django's and Airflow's processes need, derived once from ``base`` (the .env plus the shell)."""
    env = dict(base)
    env.setdefault("DJANGO_DEBUG", "false")
    # The admin is served on plain HTTP on loopback: the plain-HTTP profile (docs/configuration.md).
    env.setdefault("DJANGO_PLAIN_HTTP", "true")
    api_port = env.setdefault("AIRFLOW_API_PORT", env.get("AIRFLOW__API__PORT", "8080"))
    admin_port = env.setdefault("ETL_ADMIN_PORT", "8000")
    env.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    env.setdefault("ETL_VAR_DIR", str(home / "var"))
    env.setdefault("ETL_DAGS_FOLDER", str(REPO / "dags" / "generated"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
    env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(fitted_parallelism()))
    if is_celery(env):
        _celery_environment(env)
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__API__HOST", LOOPBACK)
    env["AIRFLOW__API__PORT"] = api_port
    env.setdefault("AIRFLOW__API__WORKERS", "1")
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://{LOOPBACK}:{api_port}/execution/")
    env.setdefault("AIRFLOW__API__BASE_URL", f"http://{LOOPBACK}:{api_port}")
    env.setdefault("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "8793")
    env.setdefault("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", "8794")
    # A new pipeline's file is found within 30 s; edits are re-parsed at once through the API (parseDagFile).
    env.setdefault("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "30")
    env.setdefault("AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES", "1")
    env.setdefault("ETL_AIRFLOW_USERNAME", "etl-django")
    env.setdefault(
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"admin:admin,{env['ETL_AIRFLOW_USERNAME']}:admin"
    )
    env.setdefault(
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(Path(env["AIRFLOW_HOME"]) / "passwords.json")
    )
    env.setdefault("ETL_AIRFLOW_API_URL", f"http://{LOOPBACK}:{api_port}")
    env.setdefault("ETL_ADMIN_URL", f"http://{LOOPBACK}:{admin_port}")
    env.setdefault("DJANGO_ALLOWED_HOSTS", f"localhost,{LOOPBACK}")
    pythonpath = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(pythonpath))
    return env


def _celery_environment(env: dict[str, str]) -> None:
    """Broker on the local Redis (a database of its own), results in PostgreSQL, one queue by default."""
    env.setdefault("AIRFLOW__CELERY__BROKER_URL", f"redis://{LOOPBACK}:6379/{CELERY_REDIS_DB}")
    metadata = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if metadata.startswith("postgres"):
        # Celery's database backend takes an SQLAlchemy URL after "db+": Airflow's metadata database.
        env.setdefault("AIRFLOW__CELERY__RESULT_BACKEND", f"db+{metadata}")
    env.setdefault("AIRFLOW__CELERY__WORKER_CONCURRENCY", str(fitted_parallelism()))
    # Django set up once per worker pool process, inherited by the task processes it forks.
    env.setdefault("AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS", "airflow_plugin.celery_config.CELERY_CONFIG")
    env.setdefault("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "default")
    env.setdefault("ETL_CELERY_QUEUES", env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"])
    env.setdefault("ETL_CELERY_WORKERS", "1")


def scratch_environment(
    home: Path,
    *,
    database_url: str,
    airflow_database_url: str,
    base: dict[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """A complete set of services' variables for throwaway services (tests, benchmarks): fresh keys and
    passwords, free loopback ports, folders under ``home``; ``extra`` wins. ``base`` defaults to this process's
    environment without its own Airflow, Django and ETL variables (they must not leak into the services)."""
    from cryptography.fernet import Fernet

    if base is None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(SESSION_PREFIXES)}
    (home / "dags" / "generated").mkdir(parents=True, exist_ok=True)
    values = {
        **base,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "DATABASE_URL": database_url,
        "ETL_CREDENTIAL_KEYS": f"scratch:{Fernet.generate_key().decode()}",
        "ETL_VAR_DIR": str(home / "var"),
        "ETL_STAGING_URL": str(home / "staging"),
        "ETL_DAGS_FOLDER": str(home / "dags" / "generated"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(airflow_database_url),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW_API_PORT": str(free_port()),
        "ETL_ADMIN_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "ETL_AIRFLOW_PASSWORD": secrets.token_urlsafe(12),
        **extra,
    }
    return service_environment(values, home)


# What a test or benchmark process set for itself (its own Airflow, Django) must not reach scratch services.
SESSION_PREFIXES = ("AIRFLOW", "ETL_", "DJANGO_", "DATABASE_URL", "PYTEST")


def sqlalchemy_url(url: str) -> str:
    """A PostgreSQL URL as Airflow's metadata connection (psycopg2 driver, as the compose file writes it)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


def check_environment(env: dict[str, str]) -> None:
    """Every variable of REQUIRED set, and Airflow's metadata on a server database (never a silent SQLite)."""
    missing = [name for name in REQUIRED if not env.get(name, "").strip()]
    if not (env.get("ETL_CREDENTIAL_KEYS") or env.get("ETL_CREDENTIAL_KEYS_FILE")):
        missing.append("ETL_CREDENTIAL_KEYS (or ETL_CREDENTIAL_KEYS_FILE)")
    if missing:
        raise ServicesError(
            "refusing to start: not set: "
            + ", ".join(missing)
            + " (copy .env.example to .env and fill it in)"
        )
    if env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite"):
        raise ServicesError(
            "refusing to start: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is SQLite; use PostgreSQL"
        )
    if is_celery(env):
        worker_names(env)
        if not env.get("AIRFLOW__CELERY__BROKER_URL", "").startswith(("redis://", "rediss://")):
            raise ServicesError("refusing to start: AIRFLOW__CELERY__BROKER_URL must be a redis:// URL")
        if env.get("ETL_STAGING_URL", "").strip() and not env["ETL_STAGING_URL"].startswith("s3://"):
            # Workers on other machines see no local folder: say so, it is fine on one machine.
            print(
                "services: note: ETL_STAGING_URL is a local folder; workers on other machines need "
                "s3:// staging (docs/deployment.md)",
                file=sys.stderr,
            )


# Run as `python -c` in the services' environment (each needs the settings of that environment, not ours).
ENSURE_STAGING = "from django_etl.dataplane.staging import ensure_location; print(ensure_location())"
ENSURE_SUPERUSER = """
import os
from django_etl.startup import setup_django
setup_django()
from django.contrib.auth import get_user_model
User = get_user_model()
name = os.environ["DJANGO_SUPERUSER_USERNAME"].strip()
user, created = User.objects.get_or_create(username=name, defaults={"email": os.environ.get("DJANGO_SUPERUSER_EMAIL", "")})
if created:
    user.set_password(os.environ["DJANGO_SUPERUSER_PASSWORD"])
user.is_staff = user.is_superuser = True
user.save()
print(repr(name), "created" if created else "exists (password left as it is)")
"""


@dataclass
class Services:
    """One set of services in ``home`` (logs, pid files, Airflow home); ``names`` picks which to run (default:
    :func:`default_names`); ``commands`` replaces the command lines :meth:`commands` derives (the compose test
    runs the compose file's own)."""

    home: Path
    env: dict[str, str]
    names: tuple[str, ...] = ()
    started: dict[str, subprocess.Popen] = field(default_factory=dict)
    command_lines: dict[str, list[str]] = field(default_factory=dict)
    environments: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = tuple(self.names) or default_names(self.env)

    @classmethod
    def from_environment(cls, home: Path | None = None, overrides: dict[str, str] | None = None, **kwargs):
        home = (home or Path(os.environ.get("ETL_SERVICES_HOME") or REPO / "var" / "services")).resolve()
        base = {**read_env_file(REPO / ".env"), **os.environ, **(overrides or {})}
        return cls(home=home, env=service_environment(base, home), **kwargs)

    # ------------------------------------------------------------ paths
    @property
    def pids(self) -> Path:
        return self.home / "pids"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def commands(self) -> dict[str, list[str]]:
        if set(self.names) <= set(self.command_lines):
            return dict(self.command_lines)
        airflow = str(BIN / "airflow")
        port = self.env["AIRFLOW_API_PORT"]
        commands = {
            "api-server": [airflow, "api-server", "--host", LOOPBACK, "--port", port],
            "scheduler": [airflow, "scheduler"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer"],
            "admin": [
                str(BIN / "gunicorn"),
                "django_etl.wsgi:application",
                "--bind",
                f"{LOOPBACK}:{self.env['ETL_ADMIN_PORT']}",
                "--workers",
                "2",
                "--access-logfile",
                "-",
            ],
        }
        for name in worker_names(self.env):
            commands[name] = [
                airflow,
                "celery",
                "worker",
                "--queues",
                self.env["ETL_CELERY_QUEUES"],
                "--concurrency",
                self.env["AIRFLOW__CELERY__WORKER_CONCURRENCY"],
                # Two workers of one machine need two names (Celery warns about a duplicate node name).
                "--celery-hostname",
                f"{name}.{os.getpid()}@{socket.gethostname()}",
            ]
        return {**commands, **self.command_lines}

    def environment(self, name: str) -> dict[str, str]:
        """The process's variables: the one environment, plus a log server port of its own for each worker."""
        if name in self.environments:
            return self.environments[name]
        env = self.env
        workers = worker_names(env)
        if name in workers:
            env = dict(env)
            first = int(env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"])
            # The scheduler serves no worker logs under Celery, so worker-1 takes the configured port.
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(first + workers.index(name))
        return env

    # ------------------------------------------------------------ set-up
    def run(self, *command: str, timeout: float = 600) -> str:
        result = subprocess.run(
            list(command), env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise ServicesError(
                f"{' '.join(command[:3])} failed:\n{(result.stderr or result.stdout)[-3000:]}"
            )
        return result.stdout

    def prepare(self, *, django_migrate: bool = True, progress=None) -> None:
        """Preflight (Django's own refusal), migrations, partitions, static files, the staging location, Airflow's
        users, the DAG files and a Django superuser when DJANGO_SUPERUSER_USERNAME is set. Safe to repeat."""
        say = progress or (lambda message: None)
        check_environment(self.env)
        for folder in (self.pids, self.logs, Path(self.env["AIRFLOW_HOME"]), Path(self.env["ETL_VAR_DIR"])):
            folder.mkdir(parents=True, exist_ok=True)
        python = str(BIN / "python")
        self.run(python, "-c", "from django_etl.startup import setup_django; setup_django()")
        if django_migrate:
            say("Django: migrate")
            self.run(python, "manage.py", "migrate", "--noinput")
        say("Django: partitions")
        self.run(python, "manage.py", "manage_partitions")
        if "admin" in self.names:
            say("Django: collectstatic")
            self.run(python, "manage.py", "collectstatic", "--noinput", "-v", "0")
        say("staging: " + self.run(python, "-c", ENSURE_STAGING).strip())
        say("Airflow: db migrate")
        self.run(str(BIN / "airflow"), "db", "migrate")
        self.write_passwords()
        if self.env.get("DJANGO_SUPERUSER_USERNAME", "").strip():
            if self.env.get("DJANGO_SUPERUSER_PASSWORD", ""):
                say("Django: superuser " + self.run(python, "-c", ENSURE_SUPERUSER).strip())
            else:
                say("Django: no superuser created (DJANGO_SUPERUSER_PASSWORD is empty)")
        say("DAG files: generate_dags")
        self.run(python, "manage.py", "generate_dags")

    def write_passwords(self) -> None:
        """The simple auth manager's users: ``admin`` for people, the service account for Django (docs)."""
        path = Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        path.parent.mkdir(parents=True, exist_ok=True)
        passwords = {
            "admin": self.env["AIRFLOW_ADMIN_PASSWORD"],
            self.env["ETL_AIRFLOW_USERNAME"]: self.env["ETL_AIRFLOW_PASSWORD"],
        }
        path.write_text(json.dumps(passwords))
        path.chmod(0o600)

    # ------------------------------------------------------------ processes
    def start(self) -> None:
        running = [name for name in self.names if self.recorded(name)]
        if running:
            raise ServicesError(f"already running: {', '.join(running)} (make stop first)")
        commands = self.commands()
        for name in self.names:
            log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 -- the child keeps it open
            process = subprocess.Popen(
                commands[name],
                env=self.environment(name),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            self.started[name] = process
            (self.pids / f"{name}.pid").write_text(f"{process.pid} {_start_time(process.pid)}\n")

    def wait_healthy(self, timeout: float = 180) -> None:
        """The api-server answers its health check with a healthy scheduler, and the admin its login page."""
        deadline = time.monotonic() + timeout
        wanted = {"api-server": f"{self.env['ETL_AIRFLOW_API_URL']}/api/v2/monitor/health"}
        if "admin" in self.names:
            wanted["admin"] = f"{self.env['ETL_ADMIN_URL']}/admin/login/"
        # A Celery worker says "<name> ready." once it consumes its queues.
        wanted.update({name: "" for name in self.names if name in worker_names(self.env)})
        while wanted and time.monotonic() < deadline:
            self.check_alive()
            for name, url in list(wanted.items()):
                if not url:
                    with contextlib.suppress(OSError):
                        if b" ready." in (self.logs / f"{name}.log").read_bytes():
                            del wanted[name]
                    continue
                with contextlib.suppress(OSError, ValueError):
                    with urllib.request.urlopen(url, timeout=2) as response:
                        body = response.read()
                    if name == "admin" or json.loads(body).get("scheduler", {}).get("status") == "healthy":
                        del wanted[name]
            time.sleep(1)
        if wanted:
            raise ServicesError(f"not healthy within {timeout} s: {', '.join(wanted)}; see {self.logs}")

    def check_alive(self) -> None:
        for name in self.names:
            if not self.recorded(name):
                raise ServicesError(f"{name} exited; see {self.logs / (name + '.log')}")

    def recorded(self, name: str) -> int | None:
        """The pid of ``name`` if its pid file names a live process that is still the one started."""
        path = self.pids / f"{name}.pid"
        if not path.exists():
            return None
        pid_text, _, started = path.read_text().strip().partition(" ")
        pid = int(pid_text)
        process = self.started.get(name)
        if process is not None and process.poll() is not None:
            return None
        return pid if _start_time(pid) == started else None

    def known_names(self) -> list[str]:
        """``names`` and whatever else has a pid file here (workers of a start with another executor)."""
        recorded = sorted(path.stem for path in self.pids.glob("*.pid")) if self.pids.exists() else []
        return list(dict.fromkeys([*self.names, *recorded]))

    def stop(self, timeout: float = 30) -> list[str]:
        """SIGTERM to each recorded process group, SIGKILL after ``timeout``; returns what was stopped."""
        stopped = []
        groups = {}
        names = self.known_names()
        for name in names:
            pid = self.recorded(name)
            if pid is not None:
                groups[name] = pid
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, pid in groups.items():
            while time.monotonic() < deadline and _alive(pid, self.started.get(name)):
                time.sleep(0.2)
            # Children the parent left behind (executor workers, parsers) share its process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if name in self.started:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.started[name].wait(timeout=10)
            stopped.append(name)
        for name in names:
            (self.pids / f"{name}.pid").unlink(missing_ok=True)
        self.started.clear()
        return stopped


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks (/proc), so a reused pid is never taken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, process: subprocess.Popen | None) -> bool:
    if process is not None:
        return process.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.services",
        description="Start, stop or prepare this machine's services: Airflow's components (and Celery "
        "workers) and the Django admin, from .env (docs/services.md, docs/deployment.md).",
    )
    parser.add_argument(
        "command",
        choices=["start", "stop", "status", "init"],
        help="start: prepare, then start every service; init: only prepare (what compose's init service runs)",
    )
    parser.add_argument(
        "--executor",
        choices=sorted(EXECUTORS),
        help="Airflow's executor (default: AIRFLOW__CORE__EXECUTOR, else local); celery also starts "
        "ETL_CELERY_WORKERS workers on the queues ETL_CELERY_QUEUES",
    )
    args = parser.parse_args(argv)
    overrides = {"AIRFLOW__CORE__EXECUTOR": EXECUTORS[args.executor]} if args.executor else {}
    try:
        services = Services.from_environment(overrides=overrides)
        if args.command == "init":
            services.prepare(progress=lambda message: print(message, flush=True))
            print("init: done")
        elif args.command == "start":
            services.prepare()
            services.start()
            try:
                services.wait_healthy()
            except ServicesError:
                services.stop()
                raise
            env = services.env
            print(
                f"Django admin: {env['ETL_ADMIN_URL']}/admin/  (python manage.py createsuperuser, or make demo's users)"
            )
            print(
                f"Airflow UI:   {env['ETL_AIRFLOW_API_URL']}/  (user admin, password AIRFLOW_ADMIN_PASSWORD from .env)"
            )
            workers = worker_names(env)
            if workers:
                print(
                    f"Celery:       {len(workers)} worker(s) on queue(s) {env['ETL_CELERY_QUEUES']}, "
                    f"broker {_without_password(env['AIRFLOW__CELERY__BROKER_URL'])}"
                )
            print(f"logs: {services.logs}   stop: make stop")
        elif args.command == "stop":
            stopped = services.stop()
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        else:
            for name in services.known_names():
                pid = services.recorded(name)
                print(f"{name:14} {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    except ServicesError as exc:
        print(f"services: {exc}", file=sys.stderr)
        return 1
    return 0


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    _credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{'***@' if at else ''}{host}"


if __name__ == "__main__":
    sys.exit(main())
