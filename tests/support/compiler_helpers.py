"""Builders of valid pipelines of every dependency shape, shared by the DAG compiler's tests."""

from __future__ import annotations

import uuid

EXTRACT = {"connector": "landing", "path": "orders.csv"}
SQL = {"sql": "select * from orders"}
CHECKS = {"checks": [{"check": "row_count", "min": 1}]}
NOTIFY = {"email": ["ops@example.com"]}


def step_id(n: int) -> uuid.UUID:
    """A fixed step id per position, so expected graphs and golden files are stable."""
    return uuid.UUID(int=n + 1000)


# name, type, config, is_parallel, dependencies (positions) -> expected upstream task ids per task.
SHAPES = {
    "linear": (
        [
            ("extract orders", "extract", EXTRACT, False, None),
            ("clean", "transform", SQL, False, None),
            ("check", "validate", CHECKS, False, None),
        ],
        {"extract_orders": set(), "clean": {"extract_orders"}, "check": {"clean"}},
    ),
    "fan_out": (
        [
            ("extract orders", "extract", EXTRACT, False, None),
            ("by day", "transform", SQL, False, None),
            ("by shop", "transform", SQL, True, None),
            ("by product", "transform", SQL, True, None),
        ],
        {
            "extract_orders": set(),
            "by_day": {"extract_orders"},
            "by_shop": {"extract_orders"},
            "by_product": {"extract_orders"},
        },
    ),
    "fan_in": (
        [
            ("extract a", "extract", EXTRACT, False, None),
            ("extract b", "extract", EXTRACT, True, None),
            ("extract c", "extract", EXTRACT, True, None),
            ("combine", "transform", {"sql": "select * from extract_a"}, False, None),
        ],
        {
            "extract_a": set(),
            "extract_b": set(),
            "extract_c": set(),
            "combine": {"extract_a", "extract_b", "extract_c"},
        },
    ),
    "diamond": (
        [
            ("extract orders", "extract", EXTRACT, False, None),
            ("left", "transform", SQL, False, None),
            ("right", "transform", SQL, True, None),
            ("join", "transform", {"sql": "select * from left join right using (id)"}, False, None),
        ],
        {
            "extract_orders": set(),
            "left": {"extract_orders"},
            "right": {"extract_orders"},
            "join": {"left", "right"},
        },
    ),
    "parallel_groups": (
        [
            ("extract a", "extract", EXTRACT, False, None),
            ("extract b", "extract", EXTRACT, True, None),
            ("t1", "transform", {"sql": "select 1", "inputs": ["extract_a"]}, False, None),
            ("t2", "transform", {"sql": "select 2", "inputs": ["extract_b"]}, True, None),
            ("merge", "transform", SQL, False, None),
            ("notify", "notify", NOTIFY, False, None),
        ],
        {
            "extract_a": set(),
            "extract_b": set(),
            "t1": {"extract_a", "extract_b"},
            "t2": {"extract_a", "extract_b"},
            "merge": {"t1", "t2"},
            "notify": {"merge"},
        },
    ),
    "explicit": (
        [
            ("extract orders", "extract", EXTRACT, False, None),
            ("enrich", "transform", SQL, False, None),
            ("audit", "validate", {**CHECKS, "input": "extract_orders"}, False, [0]),
            ("notify", "notify", NOTIFY, False, [0, 1]),
        ],
        {
            "extract_orders": set(),
            "enrich": {"extract_orders"},
            "audit": {"extract_orders"},
            "notify": {"extract_orders", "enrich"},
        },
    ),
}


def make_pipeline(
    organization, user, steps, *, name="Orders daily", status="active", pipeline_id=None, **fields
):
    """A pipeline with steps given as (name, type, config, is_parallel, dependency positions) tuples."""
    from django_etl.pipelines.models import Pipeline, PipelineStep

    fields.setdefault("config", {"schedule": "@daily"})
    pipeline = Pipeline.objects.create(
        id=pipeline_id or uuid.uuid4(),
        name=name,
        organization=organization,
        created_by=user,
        status=status,
        **fields,
    )
    # Fixed step ids for a fixed pipeline id (golden files); fresh ones otherwise.
    ids = [step_id(n) if pipeline_id else uuid.uuid4() for n in range(len(steps))]
    for position, (step_name, step_type, config, parallel, deps) in enumerate(steps):
        PipelineStep.objects.create(
            id=ids[position],
            pipeline=pipeline,
            name=step_name,
            step_type=step_type,
            config=config,
            order_index=position + 1,
            is_parallel=parallel,
            dependencies=[str(ids[d]) for d in deps or []],
        )
    pipeline.refresh_from_db()
    return pipeline


def shape_pipeline(organization, user, shape: str, **kwargs):
    steps, _ = SHAPES[shape]
    return make_pipeline(organization, user, steps, name=f"Shape {shape}", **kwargs)
