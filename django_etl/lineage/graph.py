"""Lineage pictures as inline SVG, drawn on the server: a run's tasks and hand-overs, a dataset's writers and readers.

No JavaScript and no library: boxes in rows, top to bottom (each node one row below everything it depends on, so a
long pipeline grows down the page, not off its side), curved arrows labelled with what they carry. ``run_svg(run)`` is the run page's picture (the console's run page calls
it); ``dataset_svg`` the dataset page's. Every text is escaped; links point at admin pages the viewer may open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from django_etl.runs.display import STATUS_COLOURS

NODE_W, NODE_H = 220, 50
GAP_X, GAP_Y = 36, 58  # room between rows for an arrow's label
PAD = 16
FONT = "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
INK, MUTED, LINE, ORDER_LINE = "#1f2328", "#57606a", "#57606a", "#afb8c1"


@dataclass
class Node:
    key: str
    title: str
    subtitle: str = ""
    status: str | None = None  # a run status colours the box's stripe; None draws a dataset
    href: str | None = None
    tooltip: str = ""


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""
    tooltip: str = ""
    data: bool = True  # False: "runs after" without a dataset (drawn dashed, unlabelled)


@dataclass
class Picture:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> None:
        if all(n.key != node.key for n in self.nodes):
            self.nodes.append(node)

    def svg(self, caption: str) -> SafeString:
        return render(self, caption)


# ---------------------------------------------------------------- layout and drawing
def rows_of(picture: Picture) -> list[list[Node]]:
    """Nodes in rows: a node sits one row below the furthest node it depends on."""
    by_key = {n.key: n for n in picture.nodes}
    upstream: dict[str, list[str]] = {n.key: [] for n in picture.nodes}
    for edge in picture.edges:
        if edge.source in by_key and edge.target in by_key and edge.source != edge.target:
            upstream[edge.target].append(edge.source)
    depth: dict[str, int] = {}

    def level(key: str, trail: frozenset[str] = frozenset()) -> int:
        if key not in depth:
            parents = [p for p in upstream[key] if p not in trail]  # a cycle cannot push forever
            depth[key] = 1 + max((level(p, trail | {key}) for p in parents), default=-1)
        return depth[key]

    rows: list[list[Node]] = []
    for node in picture.nodes:  # the given order breaks ties: step order, then datasets
        index = level(node.key)
        while len(rows) <= index:
            rows.append([])
        rows[index].append(node)
    # One barycentre sweep: each node below the middle of the nodes it comes from (fewer crossings).
    position = {n.key: i for i, n in enumerate(rows[0])} if rows else {}
    for row in rows[1:]:
        original = {n.key: i for i, n in enumerate(row)}
        row.sort(key=lambda node, original=original: _barycentre(node, upstream, position, original))
        position.update({n.key: i for i, n in enumerate(row)})
    return rows


def _barycentre(node: Node, upstream, position, original) -> float:
    parents = [position[p] for p in upstream[node.key] if p in position]
    return sum(parents) / len(parents) if parents else float(original[node.key])


def render(picture: Picture, caption: str) -> SafeString:
    if not picture.nodes:
        return mark_safe('<p class="etl-muted">Nothing to draw.</p>')
    rows = rows_of(picture)
    widest = max(len(r) for r in rows)
    width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X
    height = PAD * 2 + len(rows) * NODE_H + (len(rows) - 1) * GAP_Y
    boxes: dict[str, tuple[float, float]] = {}
    for index, row in enumerate(rows):
        used = len(row) * NODE_W + (len(row) - 1) * GAP_X
        left = PAD + (width - 2 * PAD - used) / 2
        for place, node in enumerate(row):
            boxes[node.key] = (left + place * (NODE_W + GAP_X), PAD + index * (NODE_H + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(caption)}" class="etl-lineage" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{escape(FONT)}">',
        f"<title>{escape(caption)}</title>",
        "<style>.etl-lineage a:hover .etl-box { stroke: #0969da; stroke-width: 2; }</style>"
        "<defs>"
        f'<marker id="etl-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{LINE}"/></marker>'
        f'<marker id="etl-arrow-order" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{ORDER_LINE}"/></marker>'
        "</defs>",
    ]
    labels = []
    for edge in picture.edges:
        if edge.source not in boxes or edge.target not in boxes:
            continue
        path, middle = _curve(boxes[edge.source], boxes[edge.target])
        if edge.data:
            parts.append(
                f'<path d="{path}" fill="none" stroke="{LINE}" stroke-width="1.6" marker-end="url(#etl-arrow)">'
                f"<title>{escape(edge.tooltip or edge.label)}</title></path>"
            )
        else:
            parts.append(
                f'<path d="{path}" fill="none" stroke="{ORDER_LINE}" stroke-width="1.3" stroke-dasharray="5 4" '
                f'marker-end="url(#etl-arrow-order)"><title>{escape(edge.tooltip or "runs after")}</title></path>'
            )
        if edge.label:
            text = _short(edge.label, 30)
            labels.append([middle[0], middle[1], 6.4 * len(text) + 10, text, edge.tooltip or edge.label])
    for node in picture.nodes:
        parts.append(_box(node, *boxes[node.key]))
    _spread(labels)
    parts.extend(_label(*label) for label in labels)  # on top of lines and boxes: no arrow hides a label
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text above went through escape()


def _curve(source: tuple[float, float], target: tuple[float, float]) -> tuple[str, tuple[float, float]]:
    """From the bottom of the source to the top of the target; the label goes where the curve is halfway."""
    x1, y1 = source[0] + NODE_W / 2, source[1] + NODE_H
    x2, y2 = target[0] + NODE_W / 2, target[1]
    if y2 <= y1:  # same or an earlier row (a cycle, never in a run): come in from the side
        x2, y2 = target[0] + NODE_W, target[1] + NODE_H / 2
    bend = max((y2 - y1) / 2, 30)
    points = [(x1, y1), (x1, y1 + bend), (x2, y2 - bend), (x2, y2)]
    path = "M{:.1f},{:.1f} C{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}".format(*(v for p in points for v in p))
    # A third of the way along, the labels of arrows that meet at one box stay apart.
    return path, _bezier(points, 0.33)


def _bezier(points: list[tuple[float, float]], t: float) -> tuple[float, float]:
    weights = ((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3)
    return (
        sum(w * p[0] for w, p in zip(weights, points, strict=True)),
        sum(w * p[1] for w, p in zip(weights, points, strict=True)),
    )


def _spread(labels: list[list[float]]) -> None:
    """Move labels sideways until none covers another ([x, y, width] each, x the centre)."""
    labels.sort(key=lambda item: (round(item[1] / 20), item[0]))
    for index, label in enumerate(labels):
        for other in labels[:index]:
            if abs(other[1] - label[1]) < 20:
                overlap = (other[2] + label[2]) / 2 + 6 - abs(label[0] - other[0])
                if overlap > 0:
                    label[0] += overlap if label[0] >= other[0] else -overlap


def _label(x: float, y: float, width: float, text: str, tooltip: str) -> str:
    return (
        f"<g><title>{escape(tooltip)}</title>"
        f'<rect x="{x - width / 2:.1f}" y="{y - 9:.1f}" width="{width:.1f}" height="18" rx="9" fill="#ffffff" '
        f'stroke="#d0d7de"/><text x="{x:.1f}" y="{y + 4:.1f}" font-size="11" text-anchor="middle" '
        f'fill="{MUTED}">{escape(text)}</text></g>'
    )


def _box(node: Node, x: float, y: float) -> str:
    tooltip = f"<title>{escape(node.tooltip or node.title)}</title>"
    if node.status is None:  # a dataset: a pill, no stripe
        shape = (
            f'<rect class="etl-box" x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="{NODE_H / 2}" '
            f'fill="#f6f8fa" stroke="#8c959f" stroke-dasharray="3 2"/>'
        )
        text_x = x + NODE_W / 2
        anchor = "middle"
    else:
        colour = STATUS_COLOURS.get(node.status, "#6e7781")
        shape = (
            f'<rect class="etl-box" x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="#ffffff" '
            f'stroke="#d0d7de"/><rect x="{x:.1f}" y="{y:.1f}" width="6" height="{NODE_H}" rx="3" fill="{colour}"/>'
        )
        text_x = x + 16
        anchor = "start"
    texts = (
        f'<text x="{text_x:.1f}" y="{y + 21:.1f}" font-size="13" font-weight="600" fill="{INK}" '
        f'text-anchor="{anchor}">{escape(_short(node.title, 28))}</text>'
        f'<text x="{text_x:.1f}" y="{y + 38:.1f}" font-size="11" fill="{MUTED}" '
        f'text-anchor="{anchor}">{escape(_short(node.subtitle, 34))}</text>'
    )
    inner = f"{tooltip}{shape}{texts}"
    if node.href:
        return f'<a href="{escape(node.href)}" style="text-decoration: none">{inner}</a>'
    return f"<g>{inner}</g>"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- one run
def run_picture(run) -> Picture:
    """The tasks of ``run`` (boxes coloured by status), its lineage edges, and the tables and files it touched."""
    from django_etl.lineage import datasets
    from django_etl.lineage.models import DataLineage

    tasks = list(
        run.task_runs.filter(run_started_at=run.started_at)
        .select_related("pipeline_step")
        .order_by("pipeline_step__order_index")
    )
    picture = Picture()
    for task in tasks:
        metrics = task.metrics or {}
        rows = metrics.get("rows_out")
        subtitle = " · ".join(
            p for p in (task.pipeline_step.step_type, task.status.replace("_", " "), _rows(rows)) if p
        )
        picture.add(
            Node(
                key=str(task.pk),
                title=task.pipeline_step.name,
                subtitle=subtitle,
                status=task.status,
                href=reverse("admin:runs_taskrun_change", args=[task.pk]),
                tooltip=f"{task.pipeline_step.name} ({task.pipeline_step.step_type}): {task.status}",
            )
        )
    by_pk = {str(t.pk): t for t in tasks}
    linked: set[tuple[str, str]] = set()
    for edge in DataLineage.objects.filter(target_task__in=tasks).order_by("created_at"):
        source, target = str(edge.source_task_id), str(edge.target_task_id)
        if source not in by_pk or target not in by_pk:
            continue
        metadata = edge.metadata or {}
        handed = ", ".join(metadata.get("datasets") or [])
        columns = metadata.get("column_lineage")
        tooltip = f"{edge.relationship_type}: {handed} ({_rows(metadata.get('rows')) or 'rows unknown'})"
        if columns:
            tooltip += f"; column lineage {columns}"
        picture.edges.append(Edge(source, target, f"{edge.relationship_type} · {handed}", tooltip))
        linked.add((source, target))
    # The order Airflow ran them in, where no dataset was handed over (a notify after the load).
    task_of_step = {str(t.pipeline_step_id): str(t.pk) for t in tasks}
    steps = (run.context or {}).get("steps") or {}
    step_of_task_id = {task_id: str(entry.get("id")) for task_id, entry in steps.items()}
    for entry in steps.values():
        target = task_of_step.get(str(entry.get("id")))
        for upstream in entry.get("upstream") or []:
            source = task_of_step.get(step_of_task_id.get(upstream, ""))
            if source and target and (source, target) not in linked:
                picture.edges.append(Edge(source, target, data=False))
    for task in tasks:
        for role, location in datasets.locations_of(task):
            key = datasets.location_key(location)
            picture.add(
                Node(
                    key=f"dataset:{key}",
                    title=datasets.short_name(location),
                    subtitle=datasets.where(location),
                    href=datasets.dataset_url(key),
                    tooltip=key,
                )
            )
            pair = (f"dataset:{key}", str(task.pk)) if role == "read" else (str(task.pk), f"dataset:{key}")
            picture.edges.append(Edge(*pair, label=role, tooltip=f"{role} {key}"))
    return picture


def run_svg(run) -> SafeString:
    """The run page's picture (called by the console's run page, ``django_etl.runs.console``)."""
    return run_picture(run).svg(f"Lineage of run {run.airflow_run_id or run.pk}")


def _rows(value) -> str:
    if value in (None, ""):
        return ""
    try:
        return f"{int(value):,} rows"
    except (TypeError, ValueError):
        return ""
