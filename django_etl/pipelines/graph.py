"""The dependency rule that turns ordered steps into a task graph, and cycle detection.

Steps are taken in order_index order. A step with is_parallel joins the group of the step before it; any
other step starts a new group. A step with explicit dependencies depends on exactly those steps; a step
without depends on every step of the previous group (the first group has no upstream).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StepNode:
    id: str
    order_index: int
    is_parallel: bool
    dependencies: tuple[str, ...]


def groups_of(steps: Sequence[StepNode]) -> list[list[StepNode]]:
    groups: list[list[StepNode]] = []
    for step in sorted(steps, key=lambda s: s.order_index):
        if step.is_parallel and groups:
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def upstreams(steps: Sequence[StepNode]) -> dict[str, list[str]]:
    """Each step id -> the ids it waits for, in order_index order."""
    order = {s.id: s.order_index for s in steps}
    result: dict[str, list[str]] = {}
    previous: list[StepNode] = []
    for group in groups_of(steps):
        for step in group:
            if step.dependencies:
                result[step.id] = sorted(dict.fromkeys(step.dependencies), key=lambda i: order.get(i, 0))
            else:
                result[step.id] = [p.id for p in previous]
        previous = group
    return result


def find_cycle(edges: dict[str, Iterable[str]]) -> list[str] | None:
    """A cycle as [a, b, …, a] if the graph (node -> upstream nodes) has one, else None."""
    white, grey, black = 0, 1, 2
    colour = {node: white for node in edges}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for upstream in edges.get(node, ()):
            if colour.get(upstream, black) == grey:
                return [*stack[stack.index(upstream) :], upstream]
            if colour.get(upstream) == white:
                found = visit(upstream)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for node in sorted(edges):
        if colour[node] == white:
            found = visit(node)
            if found:
                # Upstream edges walk backwards; report the cycle in execution order.
                return list(reversed(found))
    return None


def ancestors(edges: dict[str, Iterable[str]], node: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(node, ()))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(edges.get(current, ()))
    return seen
