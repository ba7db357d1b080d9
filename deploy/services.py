"""Start and stop the real services on one machine, without Docker: Airflow (api-server, scheduler,
dag-processor, triggerer; LocalExecutor on PostgreSQL) and the Django admin under gunicorn.

``make airflow`` runs ``python -m deploy.services start``, ``make stop`` runs ``... stop``. The environment comes
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
import signal
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
    """LocalExecutor workers: one per core, at least 2 (Airflow's default of 32 forks 32 workers)."""
    return max(2, cores or os.cpu_count() or 2)


def service_environment(base: dict[str, str], home: Path) -> dict[str, str]:
    """Everything Django's and Airflow's processes need, derived once from ``base`` (the .env plus the shell)."""
    env = dict(base)
    env.setdefault("DJANGO_DEBUG", "false")
    # The admin is served on plain HTTP on loopback: the plain-HTTP profile (docs/configuration.md).
    env.setdefault("DJANGO_PLAIN_HTTP", "true")
    api_port = env.setdefault("AIRFLOW_API_PORT", "8080")
    admin_port = env.setdefault("ETL_ADMIN_PORT", "8000")
    env.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    env.setdefault("ETL_VAR_DIR", str(home / "var"))
    env.setdefault("ETL_DAGS_FOLDER", str(REPO / "dags" / "generated"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
    env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(fitted_parallelism()))
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


@dataclass
class Services:
    """One set of services in ``home`` (logs, pid files, Airflow home); ``names`` picks which to run."""

    home: Path
    env: dict[str, str]
    names: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer", "admin")
    started: dict[str, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, home: Path | None = None, **kwargs) -> Services:
        home = (home or Path(os.environ.get("ETL_SERVICES_HOME") or REPO / "var" / "services")).resolve()
        base = {**read_env_file(REPO / ".env"), **os.environ}
        return cls(home=home, env=service_environment(base, home), **kwargs)

    # ------------------------------------------------------------ paths
    @property
    def pids(self) -> Path:
        return self.home / "pids"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def commands(self) -> dict[str, list[str]]:
        airflow = str(BIN / "airflow")
        port = self.env["AIRFLOW_API_PORT"]
        return {
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

    # ------------------------------------------------------------ set-up
    def run(self, *command: str, timeout: float = 600) -> None:
        result = subprocess.run(
            list(command), env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise ServicesError(
                f"{' '.join(command[:3])} failed:\n{(result.stderr or result.stdout)[-3000:]}"
            )

    def prepare(self, *, django_migrate: bool = True) -> None:
        """Preflight (Django's own refusal), migrations, static files, the service account, the DAG files."""
        check_environment(self.env)
        for folder in (self.pids, self.logs, Path(self.env["AIRFLOW_HOME"]), Path(self.env["ETL_VAR_DIR"])):
            folder.mkdir(parents=True, exist_ok=True)
        python = str(BIN / "python")
        self.run(python, "-c", "from django_etl.startup import setup_django; setup_django()")
        if django_migrate:
            self.run(python, "manage.py", "migrate", "--noinput")
        if "admin" in self.names:
            self.run(python, "manage.py", "collectstatic", "--noinput", "-v", "0")
        self.run(str(BIN / "airflow"), "db", "migrate")
        self.write_passwords()
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
                env=self.env,
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
        while wanted and time.monotonic() < deadline:
            self.check_alive()
            for name, url in list(wanted.items()):
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

    def stop(self, timeout: float = 30) -> list[str]:
        """SIGTERM to each recorded process group, SIGKILL after ``timeout``; returns what was stopped."""
        stopped = []
        groups = {}
        for name in self.names:
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
        for name in self.names:
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
    parser = argparse.ArgumentParser(prog="python -m deploy.services", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    services = Services.from_environment()
    try:
        if args.command == "start":
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
            print(f"logs: {services.logs}   stop: make stop")
        elif args.command == "stop":
            stopped = services.stop()
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        else:
            for name in services.names:
                pid = services.recorded(name)
                print(f"{name:14} {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    except ServicesError as exc:
        print(f"services: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
