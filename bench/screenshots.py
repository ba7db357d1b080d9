"""Screenshots of the console with a real headless browser: dashboard, a failed diamond run, a log, a pipeline.

    .venv/bin/python bench/screenshots.py            # writes docs/screenshots/*.png

It builds a throwaway SQLite database with the sample records of ``bench/console_data.py``, renders each page
through Django as a signed-in member (the test client: no server, no password), points the page's static
files at their files on disk, and has Chromium (``apt-get install -y chromium``) take the picture. Pass
``--html-only`` to keep the rendered HTML without taking pictures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
STATIC = re.compile(r'(href|src)="/static/([^"?#]+)')
# name, (width, height), role of the member who looks
PAGES = {
    "dashboard": ((1400, 900), "viewer"),
    "run-failed-diamond": ((1400, 1500), "owner"),
    "task-run-log": ((1400, 1100), "viewer"),
    "pipeline": ((1400, 2400), "editor"),
    "run-list": ((1400, 900), "viewer"),
}


def setup(folder: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'console.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_etl.settings")
    os.environ["ETL_REGENERATE_ON_SAVE"] = "false"  # sample records, no DAG files
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def sample():
    from bench import console_data
    from django_etl.core.models import Organization, OrganizationMembership, User

    organization = Organization.objects.create(name="Northwind Analytics", slug="northwind")
    members = {}
    for role, name in (("owner", "dana"), ("editor", "eli"), ("viewer", "vera")):
        user = User.objects.create_user(name, f"{name}@northwind.example", None, first_name=name.title())
        OrganizationMembership.objects.create(user=user, organization=organization, role=role)
        members[role] = user
    pipeline, failed_run = console_data.build(members["owner"], organization)
    return members, pipeline, failed_run


def urls(pipeline, failed_run) -> dict[str, str]:
    from django.urls import reverse

    failed_task = failed_run.task_runs.get(status="failed")
    return {
        "dashboard": reverse("admin:index"),
        "run-failed-diamond": reverse("admin:runs_pipelinerun_change", args=[failed_run.pk]),
        "task-run-log": reverse("admin:runs_taskrun_change", args=[failed_task.pk]),
        "pipeline": reverse("admin:pipelines_pipeline_change", args=[pipeline.pk]),
        "run-list": reverse("admin:runs_pipelinerun_changelist"),
    }


def local_static(html: str) -> str:
    """/static/admin/css/base.css → file:///…/base.css, so the browser needs no server."""
    from django.contrib.staticfiles import finders

    def replace(match: re.Match) -> str:
        found = finders.find(match[2])
        return f'{match[1]}="{Path(found).as_uri()}' if found else match[0]

    return STATIC.sub(replace, html)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("No Chromium found: apt-get install -y chromium")


def shoot(browser: str, page: Path, png: Path, size: tuple[int, int]) -> None:
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--html-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="etl-screens-") as tmp:
        folder = Path(tmp)
        setup(folder)
        from django.test import Client

        members, pipeline, failed_run = sample()
        args.out.mkdir(parents=True, exist_ok=True)
        browser = None if args.html_only else chromium()
        for name, url in urls(pipeline, failed_run).items():
            size, role = PAGES[name]
            client = Client(HTTP_HOST="localhost")
            client.force_login(members[role])
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{name}: {url} answered {response.status_code}")
            page = folder / f"{name}.html"
            page.write_text(local_static(response.content.decode()))
            if args.html_only:
                shutil.copy(page, args.out / page.name)
                continue
            shoot(browser, page, args.out / f"{name}.png", size)
            print(f"{args.out / f'{name}.png'}  ({role}: {url})")


if __name__ == "__main__":
    main()
