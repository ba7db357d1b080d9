"""Adapter-level load tests: a staged dataset parsed from CSV text, and a LoadRequest for one try of a run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

DAY = (datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC))
RUN = "scheduled__2025-01-02T00:00:00+00:00"
CSV = (
    "id,name,amount,created_at\n"
    "1,alpha,10.5,2025-01-02T01:00:00Z\n"
    "2,beta,20.0,2025-01-02T05:00:00Z\n"
    "3,gamma,30.25,2025-01-02T23:59:00Z\n"
)


@pytest.fixture
def staged(tmp_path):
    """staged(csv_text=CSV, run_id=RUN) -> the StagedReader of that text staged as dataset 'orders'."""
    from django_etl.dataplane.formats import read_csv
    from django_etl.dataplane.staging import Staging

    staging = Staging(str(tmp_path / "staging"))
    count = 0

    def stage(text: str = CSV, run_id: str = RUN):
        nonlocal count
        count += 1
        source = tmp_path / f"orders-{count}.csv"
        source.write_text(text)
        directory = staging.dataset_dir("dag", run_id, "extract_orders", "orders")
        info = staging.write_dataset(directory, "orders", read_csv(str(source), batch_size=1000))
        return staging.reader(info.uri)

    return stage


def load_request(run_id: str = RUN, **config):
    """The LoadRequest the load step builds for task 'load_orders' of ``run_id`` over day DAY."""
    from django_etl.dataplane import LoadRequest

    config.setdefault("table", "orders")
    if "key" in config:
        config["key"] = tuple(config["key"])
    return LoadRequest(
        dag_id="dag",
        run_id=run_id,
        task_id="load_orders",
        data_interval_start=DAY[0],
        data_interval_end=DAY[1],
        **config,
    )


def crash_at(monkeypatch, point: str) -> None:
    """Make the load raise at a named point of its transaction (the shared ledger's fault hook)."""
    from django_etl.dataplane import ledger

    def fault(where: str) -> None:
        if where == point:
            raise RuntimeError(f"simulated crash at {where}")

    monkeypatch.setattr(ledger, "fault", fault)


def no_crash(monkeypatch) -> None:
    from django_etl.dataplane import ledger

    monkeypatch.setattr(ledger, "fault", lambda where: None)
