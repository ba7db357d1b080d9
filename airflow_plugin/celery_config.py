"""The CeleryExecutor's Celery configuration: Airflow's default, plus Django set up in every worker process.

Selected by ``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=airflow_plugin.celery_config.CELERY_CONFIG`` (deploy/services.py
and docker-compose.yaml set it). A Celery worker is not an Airflow job, so the listener's ``on_starting`` warm-up
never runs in it, and each task process forked from a pool process would pay Django's import and set-up (about
1.6 s on a 2-core machine) before its first write-back. Setting Django up once per pool process, right after
Celery forks it (no database connection is opened), lets every task process forked from it inherit a ready Django.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_process_init

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)


@worker_process_init.connect(weak=False)
def warm_up_pool_process(**_: Any) -> None:
    """The listener's warm-up (ETL_WARM_DJANGO; never raises), in each Celery pool process."""
    from airflow_plugin.writeback import listener

    started = time.monotonic()
    listener.on_starting(component=None)
    from django.apps import apps

    if apps.ready:
        # Loggers are not wired yet in a new pool process; its stderr goes to the worker's log.
        print(
            f"Django set up in worker pool process {os.getpid()} in {time.monotonic() - started:.2f} s",
            file=sys.stderr,
            flush=True,
        )
