"""Benchmark of the DAG compiler on PostgreSQL: 1,000 pipelines of 5-10 steps (results: docs/benchmarks.md).

Run: .venv/bin/python bench/generate_dags.py [--pipelines 1000] [--cold-runs 7]
Uses a scratch database (etl_bench_compiler on 127.0.0.1, created and dropped; BENCH_PG_URL overrides the
server) and a temporary folder. Prints:
- time to generate every file, and to regenerate with nothing changed (target < 10 s, 0 files rewritten);
- warm parse time per file, p50/p95, generated vs a hand-written file building the same operators with the
  same arguments (target: generated <= 1.5x hand-written);
- cold parse: a fresh process parsing one generated file vs a fresh process parsing a hand-written DAG of
  plain PythonOperators of the same shape (target: the platform adds < 200 ms).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE = "etl_bench_compiler"
WORK = Path(tempfile.mkdtemp(prefix="etl-bench-compiler-"))

os.environ.update(
    DATABASE_URL=f"{SERVER}/{DATABASE}",
    DJANGO_SETTINGS_MODULE="django_etl.settings",
    ETL_VAR_DIR=str(WORK / "var"),
    ETL_FILE_ROOTS=str(WORK / "files"),
    ETL_REGENERATE_ON_SAVE="false",
    AIRFLOW_HOME=str(WORK / "airflow"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{WORK / 'airflow' / 'airflow.db'}",
)
sys.path.insert(0, str(REPO))


def admin_sql(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
        connection.execute(statement)


def steps_for(rng: random.Random, count: int) -> list[tuple[str, str, dict, bool]]:
    """count (5-10) steps: 1-2 extracts, transform groups of 1-2, then merge, validate, load, notify."""
    extract = {"connector": "landing", "path": "orders.csv"}
    head_and_middle = count - 4
    extracts = 2 if head_and_middle >= 2 and rng.random() < 0.5 else 1
    steps = [(f"extract {i}", "extract", extract, i > 0) for i in range(extracts)]
    remaining, group = head_and_middle - extracts, 0
    while remaining > 0:
        size = min(remaining, rng.choice([1, 2]))
        for i in range(size):
            steps.append((f"transform {group} {i}", "transform", {"sql": "select * from input"}, i > 0))
        remaining, group = remaining - size, group + 1
    steps += [
        ("merge", "transform", {"sql": "select * from a union all select * from b"}, False),
        ("check", "validate", {"checks": [{"check": "row_count", "min": 1}]}, False),
        ("load", "load", {"connector": "landing", "path": "out/orders.csv", "mode": "replace"}, False),
        ("notify", "notify", {"email": ["ops@example.com"], "when": "failure"}, False),
    ]
    return steps


def create_pipelines(count: int) -> None:
    from django_etl.connectors.models import Connector
    from django_etl.core.models import Organization, User
    from django_etl.pipelines.models import Pipeline, PipelineStep

    (WORK / "files").mkdir(parents=True)
    user = User.objects.create_user(username="bench")
    organization = Organization.objects.create(name="Bench", slug="bench")
    Connector.objects.create(
        name="landing",
        connector_type="file",
        organization=organization,
        created_by=user,
        config={"root": str(WORK / "files")},
    )
    rng = random.Random(1000)
    pipelines, steps = [], []
    for n in range(count):
        pipeline = Pipeline(
            id=uuid.UUID(int=n + 1),
            name=f"Pipeline {n}",
            organization=organization,
            created_by=user,
            status="paused" if n % 10 == 0 else "active",
            config={"schedule": "@daily", "retries": 2},
            metadata={"tags": ["bench"]},
        )
        pipelines.append(pipeline)
        for order, (name, step_type, config, parallel) in enumerate(steps_for(rng, rng.randint(5, 10))):
            steps.append(
                PipelineStep(
                    pipeline=pipeline,
                    name=name,
                    step_type=step_type,
                    config=config,
                    order_index=order + 1,
                    is_parallel=parallel,
                )
            )
    Pipeline.objects.bulk_create(pipelines)
    PipelineStep.objects.bulk_create(steps, batch_size=2000)
    print(f"created {count} pipelines, {len(steps)} steps ({len(steps) / count:.1f} per pipeline)")


def hand_written(spec: dict, *, plain: bool) -> str:
    """A hand-written DAG file for the same pipeline: the same operators and arguments, or PythonOperators."""
    from django_etl.pipelines.codegen import literal

    pipeline, settings = spec["pipeline"], spec["dag"]
    lines = [
        "import pendulum",
        "from datetime import timedelta",
        "from airflow.sdk import DAG",
    ]
    if plain:
        lines += [
            "from airflow.providers.standard.operators.python import PythonOperator",
            "",
            "def noop():",
            "    pass",
        ]
    else:
        lines += [
            "from airflow_plugin.writeback import DAG_CALLBACKS, TASK_CALLBACKS",
            "from airflow_plugin.operators import OPERATORS",
            f"PIPELINE = {literal({k: v for k, v in pipeline.items() if k not in ('status', 'organization_name')})}",
        ]
    lines += [
        "",
        "with DAG(",
        f"    dag_id={pipeline['dag_id']!r},",
        f"    dag_display_name={settings['display_name']!r},",
        f"    schedule={settings['schedule']!r},",
        f"    start_date=pendulum.datetime(2024, 1, 1, tz={settings['timezone']!r}),",
        f"    catchup={settings['catchup']!r},",
        f"    max_active_runs={settings['max_active_runs']!r},",
        f"    default_args={{'owner': {settings['owner']!r}}},",
        f"    tags={settings['tags']!r},",
        f"    is_paused_upon_creation={settings['is_paused_upon_creation']!r},",
        *([] if plain else ["    **DAG_CALLBACKS,"]),
        ") as dag:",
    ]
    for step in spec["steps"]:
        variable = f"t_{step['task_id']}"
        if plain:
            lines.append(
                f"    {variable} = PythonOperator(task_id={step['task_id']!r}, python_callable=noop)"
            )
            continue
        lines += [
            f"    {variable} = OPERATORS[{step['step_type']!r}](",
            f"        task_id={step['task_id']!r},",
            f"        task_display_name={step['name']!r},",
            f"        step={literal(step, 2)},",
            "        pipeline=PIPELINE,",
            f"        retries={step['retries']!r},",
            f"        retry_delay=timedelta(seconds={step['retry_delay_seconds']!r}),",
            f"        execution_timeout=timedelta(seconds={step['execution_timeout_seconds']!r}),",
            "        **TASK_CALLBACKS,",
            "    )",
        ]
    for step in spec["steps"]:
        for upstream in step["upstream"]:
            lines.append(f"    t_{upstream} >> t_{step['task_id']}")
    return "\n".join(lines) + "\n"


def load_module(path: Path, name: str) -> object:
    """What Airflow's DagBag does with a file: a source loader (with its bytecode cache) and exec_module."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def warm_parse_ms(pairs: list[tuple[Path, Path]], passes: int = 3) -> tuple[list[float], list[float]]:
    """Per-file parse time of each (generated, hand-written) pair, in one process that has imported Airflow.

    The two files of a pair are timed one after the other, and each file's best of ``passes`` is kept, so
    other work on the machine does not land on one side only.
    """
    for n, pair in enumerate(
        pairs
    ):  # the first parse writes the bytecode cache, as Airflow's first parse does
        for side, path in enumerate(pair):
            load_module(path, f"warmup_{side}_{n}")
    best: list[list[float]] = [[float("inf")] * len(pairs), [float("inf")] * len(pairs)]
    for attempt in range(passes):
        for n, pair in enumerate(pairs):
            for side, path in enumerate(pair):
                start = time.perf_counter()
                load_module(path, f"bench_{attempt}_{side}_{n}")
                best[side][n] = min(best[side][n], (time.perf_counter() - start) * 1000)
    return best[0], best[1]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


COLD = """
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.SourceFileLoader("cold_dag", sys.argv[1])
module = importlib.util.module_from_spec(importlib.util.spec_from_loader("cold_dag", loader))
loader.exec_module(module)
assert len(module.dag.tasks) > 0
"""


def cold_parse_ms(path: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of a fresh process parsing ``path``.

    CPU time is reported too because it barely moves when other work shares the machine; wall time does.
    """
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", COLD, str(path)], cwd=REPO, env=os.environ)
    _, status, usage = os.wait4(child.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"parsing {path} failed in a fresh process (exit {child.returncode})")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--cold-runs", type=int, default=7)
    args = parser.parse_args()

    admin_sql(f"DROP DATABASE IF EXISTS {DATABASE}")
    admin_sql(f"CREATE DATABASE {DATABASE}")
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        admin_sql(f"DROP DATABASE IF EXISTS {DATABASE}")
        shutil.rmtree(WORK, ignore_errors=True)


def run(args) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    create_pipelines(args.pipelines)

    from django_etl.pipelines.dagspec import build_spec
    from django_etl.pipelines.generator import generate
    from django_etl.pipelines.models import Pipeline

    out = WORK / "dags"

    def timed(action):
        """(result, wall seconds, CPU seconds of this process): CPU time shows the work without the load."""
        wall, cpu = time.perf_counter(), time.process_time()
        result = action()
        return result, time.perf_counter() - wall, time.process_time() - cpu

    quick, untried, untried_cpu = timed(lambda: generate(output=WORK / "dags-untried", trial_build=False))
    _, airflow_import, import_cpu = timed(lambda: importlib.import_module("airflow_plugin.builder"))
    first, full, full_cpu = timed(lambda: generate(output=out))
    again, rerun, rerun_cpu = timed(lambda: generate(output=out))
    assert first.ok and len(first.created) == args.pipelines, first.line()
    assert quick.ok and len(quick.created) == args.pipelines, quick.line()
    rewritten = len(again.created) + len(again.updated) + len(again.removed)
    print(f"generate all, --no-trial-build: {untried:.2f} s (CPU {untried_cpu:.2f} s); {quick.line()}")
    print(
        f"generate all, trial builds:     {full:.2f} s (CPU {full_cpu:.2f} s) "
        f"+ {airflow_import:.2f} s (CPU {import_cpu:.2f} s) to import Airflow once"
    )
    print(f"  {first.line()}")
    print(
        f"regenerate, nothing changed:    {rerun:.2f} s (CPU {rerun_cpu:.2f} s), files rewritten: {rewritten} "
        "(target < 10 s, 0)"
    )
    print(f"  {again.line()}")

    hand, plain = WORK / "hand", WORK / "plain"
    hand.mkdir()
    plain.mkdir()
    pipelines = Pipeline.objects.select_related("organization").prefetch_related("steps").order_by("pk")
    for pipeline in pipelines:
        spec, _ = build_spec(pipeline, list(pipeline.steps.all()))
        (hand / f"{pipeline.dag_id}.py").write_text(hand_written(spec, plain=False))
        (plain / f"{pipeline.dag_id}.py").write_text(hand_written(spec, plain=True))

    pairs = [(path, hand / path.name) for path in sorted(out.glob("*.py"))]
    generated_ms, hand_ms = warm_parse_ms(pairs)
    g50, g95 = statistics.median(generated_ms), percentile(generated_ms, 95)
    h50, h95 = statistics.median(hand_ms), percentile(hand_ms, 95)
    print(f"warm parse per file, generated:    p50 {g50:.2f} ms, p95 {g95:.2f} ms")
    print(f"warm parse per file, hand-written: p50 {h50:.2f} ms, p95 {h95:.2f} ms")
    print(f"  ratio generated/hand-written: p50 {g50 / h50:.2f}x, p95 {g95 / h95:.2f}x (target <= 1.5x)")

    # The largest pipeline, so the comparison is not flattered by a small file.
    name = max(out.glob("*.py"), key=lambda p: p.stat().st_size).name
    generated_cold, plain_cold = [], []
    for _ in range(args.cold_runs):  # interleaved, so machine noise hits both alike
        generated_cold.append(cold_parse_ms(out / name))
        plain_cold.append(cold_parse_ms(plain / name))
    for label, index in (("wall", 0), ("CPU", 1)):
        gc = statistics.median(t[index] for t in generated_cold)
        pc = statistics.median(t[index] for t in plain_cold)
        print(
            f"cold parse ({label} time, median of {args.cold_runs} fresh processes): generated {gc:.0f} ms, "
            f"plain PythonOperators {pc:.0f} ms; the platform adds {gc - pc:.0f} ms (target < 200 ms)"
        )


if __name__ == "__main__":
    main()
