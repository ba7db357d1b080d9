"""Which staged dataset each step reads and writes: explicit names, or the defaults taken from upstream."""

from __future__ import annotations

from dataclasses import dataclass, field

# Step types that produce a dataset (validate passes its input through, checked, under the same name).
PRODUCERS = {"extract", "transform"}
SINGLE_INPUT = {"load", "validate"}


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
        if step.step_type == "extract":
            step.output = config.get("output") or step.task_id
        elif step.step_type == "transform":
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
        elif step.step_type in SINGLE_INPUT:
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
            step.output = name if step.step_type == "validate" else None
        else:  # notify reads no dataset; it summarizes the run
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
