"""Which staged dataset each step reads and writes: explicit names, or the defaults taken from upstream."""

from __future__ import annotations

from dataclasses import dataclass, field

from django_etl.stepkinds import STEP_KINDS, DatasetRole

# Each kind's role comes from the step-kind registry; an unknown kind (reported elsewhere) reads nothing.
SINGLE_INPUT = {DatasetRole.CONSUME, DatasetRole.PASS_THROUGH}


@dataclass
class StepData:
    id: str
    task_id: str
    step_type: str
    config: dict
    inputs: list[str] = field(default_factory=list)
    output: str | None = None


def resolve(steps: list[StepData], edges: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """Fill each step's inputs and output in place; return problems as (step id, key, message)."""
    problems: list[tuple[str, str, str]] = []
    by_id = {s.id: s for s in steps}
    order = _topological(steps, edges)
    for step_id in order:
        step = by_id[step_id]
        upstream_outputs = [by_id[u].output for u in edges.get(step_id, []) if u in by_id and by_id[u].output]
        available = _available(step_id, by_id, edges)
        config = step.config if isinstance(step.config, dict) else {}
        kind = STEP_KINDS.get(step.step_type)
        role = kind.dataset_role if kind is not None else DatasetRole.NONE
        if role == DatasetRole.PRODUCE:
            step.output = config.get("output") or step.task_id
        elif role == DatasetRole.COMBINE:
            explicit = list(config.get("inputs") or [])
            for join in config.get("operations") or []:
                if isinstance(join, dict) and join.get("op") == "join" and join.get("dataset"):
                    explicit.append(join["dataset"])
            step.inputs = list(dict.fromkeys(explicit or upstream_outputs))
            step.output = config.get("output") or step.task_id
            key = "config.inputs"
            for name in step.inputs:
                if name not in available:
                    problems.append((step_id, key, f"dataset {name!r} is not produced by an upstream step"))
            if not step.inputs:
                problems.append((step_id, key, "no input: no upstream step produces a dataset"))
        elif role in SINGLE_INPUT:
            name = config.get("input")
            candidates = list(dict.fromkeys(upstream_outputs))
            if name:
                if name not in available:
                    problems.append(
                        (step_id, "config.input", f"dataset {name!r} is not produced by an upstream step")
                    )
            elif len(candidates) == 1:
                name = candidates[0]
            elif not candidates:
                problems.append((step_id, "config.input", "no input: no upstream step produces a dataset"))
            else:
                problems.append(
                    (
                        step_id,
                        "config.input",
                        f"several upstream datasets ({', '.join(candidates)}): name one",
                    )
                )
            step.inputs = [name] if name else []
            step.output = name if role == DatasetRole.PASS_THROUGH else None
        else:  # DatasetRole.NONE: notify reads no dataset; it summarizes the run
            step.inputs, step.output = [], None
    return problems


def _available(step_id: str, by_id: dict[str, StepData], edges: dict[str, list[str]]) -> set[str]:
    from django_etl.pipelines.graph import ancestors

    return {by_id[a].output for a in ancestors(edges, step_id) if a in by_id and by_id[a].output}


def _topological(steps: list[StepData], edges: dict[str, list[str]]) -> list[str]:
    """Upstream-first order; ignores edges to unknown steps (reported elsewhere). Assumes no cycle."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> None:
        if node in seen:
            return
        seen.add(node)
        for upstream in edges.get(node, []):
            if upstream in edges:
                visit(upstream)
        done.append(node)

    for step in steps:
        visit(step.id)
    return done
