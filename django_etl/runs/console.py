"""The dashboard on the admin's home page: which organization to show, and its context for the template."""

from __future__ import annotations

from django_etl.core import permissions
from django_etl.core.models import Organization
from django_etl.runs import dashboard, display

DASHBOARD_PERMISSION = "runs.view_pipelinerun"


def visible_organizations(user):
    """The organizations whose runs ``user`` may view (every one for a superuser)."""
    queryset = Organization.objects.order_by("name")
    if user.is_active and user.is_superuser:
        return list(queryset)
    return list(queryset.filter(pk__in=permissions.organizations_with(user, DASHBOARD_PERMISSION)))


def dashboard_context(request) -> dict:
    organizations = visible_organizations(request.user)
    if not organizations:
        return {"etl_dashboard": None}
    wanted = request.GET.get("organization", "")
    chosen = next((org for org in organizations if str(org.pk) == wanted), organizations[0])
    board = dashboard.build(chosen)
    rows = [
        {
            "health": item,
            "last_status": display.status_badge(item.last_run.status) if item.last_run else None,
            "last_duration": display.readable_duration(item.last_run.duration) if item.last_run else "—",
            "rate_7d": _rate(item.rate_7d),
            "rate_30d": _rate(item.rate_30d),
            "trend": display.sparkline(item.trend),
            "alerts": [display.level_badge(level, n) for level, n in item.open_alerts.items()],
        }
        for item in board.pipelines
    ]
    return {
        "etl_dashboard": board,
        "etl_rows": rows,
        "etl_organizations": organizations,
        "etl_alerts": [display.level_badge(level, n) for level, n in board.open_alerts.items()],
        "etl_slowest": [(s, display.readable_duration(s.value)) for s in board.slowest_steps],
        "etl_window_days": dashboard.WINDOW_DAYS,
    }


def _rate(rate: dashboard.Rate) -> str:
    if rate.percent is None:
        return "—"
    return f"{rate.percent:.0f} % ({rate.succeeded}/{rate.ended})"


def run_page_context(run) -> dict:
    """The run page's extra sections: tasks in step order with errors, alerts, timeline and lineage picture."""
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert
    from django_etl.runs.logview import error_excerpt
    from django_etl.runs.models import TaskRun

    tasks = list(
        # The run's start is its task runs' partition key (as write-back reads them): one partition, not all.
        TaskRun.objects.filter(pipeline_run=run, run_started_at=run.started_at)
        .select_related("pipeline_step")
        .order_by("pipeline_step__order_index", "pipeline_step__name")
    )
    alerts = list(Alert.objects.filter(pipeline_run=run).order_by("-created_at"))
    alert_of_task = {a.task_run_id: a.message for a in reversed(alerts) if a.task_run_id}
    rows = []
    for task in tasks:
        error = ""
        if task.status in ("failed", "timeout"):
            error = alert_of_task.get(task.pk) or error_excerpt(task.logs)
        rows.append(
            {
                "task": task,
                "status": display.status_badge(task.status),
                "took": display.readable_duration(task.duration),
                "rows_in": (task.metrics or {}).get("rows_in", "—"),
                "rows_out": (task.metrics or {}).get("rows_out", "—"),
                "error": error[:300],
            }
        )
    # The edges' ends are this run's task runs, already read: joining task_runs by id alone would probe
    # every partition (its key is not in the join); an end from another run is read on its own.
    by_id = {task.pk: task for task in tasks}
    edges = list(DataLineage.objects.filter(target_task__in=list(by_id)))
    for edge in edges:
        for end in ("source_task", "target_task"):
            task = by_id.get(getattr(edge, f"{end}_id"))
            if task is not None:
                setattr(edge, end, task)
    return {
        "etl_tasks": rows,
        "etl_alerts": [(a, display.level_badge(a.level)) for a in alerts],
        "etl_timeline": display.timeline(
            [
                {
                    "name": t.pipeline_step.name,
                    "status": t.status,
                    "start": t.started_at,
                    "end": t.completed_at,
                }
                for t in tasks
            ]
        ),
        "etl_edges": edges,
        "etl_graph": lineage_picture(run, tasks, edges),
    }


def lineage_picture(run, tasks, edges):
    """The run's graph as SVG from the lineage room's ``django_etl.lineage.graph``, when it provides one."""
    try:
        from django_etl.lineage import graph
    except ImportError:
        return None
    render = getattr(graph, "run_svg", None) or getattr(graph, "render_run", None)
    if render is None:
        return None
    try:
        return render(run)
    except Exception:  # the picture is a bonus: the page (and its edge table) reads without it
        return None


def task_page_context(task_run) -> dict:
    from django_etl.runs.logview import parse_tries

    metrics = task_run.metrics or {}
    tries = int(metrics.get("try_number") or (task_run.retry_count + 1 if task_run.started_at else 0))
    logs = parse_tries(task_run.logs, latest_try=max(tries, 1))
    return {
        "etl_try_logs": [
            {
                "number": entry.number,
                "lines": entry.lines,
                "summary": display.fields(entry.summary) if entry.summary is not None else None,
                "latest": index == 0,
            }
            for index, entry in enumerate(logs)
        ],
        "etl_tries": tries,
        "etl_max_tries": metrics.get("max_tries"),
    }
