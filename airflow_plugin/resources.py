"""What the operating system says about a task's resources: its memory cgroup, OOM kills, worker memory, disk.

Two sides use it. The task process, when a try starts, records its pid, host, boot and its memory cgroup's
out-of-memory kill counter (:func:`attempt_record`), and at its end measures the worker's memory and the free
space of local staging (:func:`task_resources`). The reconciler, when a try ended without writing its result
manifest (SIGKILL, a lost worker), asks :func:`kill_verdict` whether the kernel killed it for memory: only the
OS can say so — a kernel log line naming the task's pid (``/dev/kmsg``), else the cgroup's ``oom_kill``
counter having risen since the try started (cgroup v2 ``memory.events``, v1 ``memory.oom_control``). When
neither can be read (another host, no permission) the verdict is *unknown*, never a guess.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
KMSG = "/dev/kmsg"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# A cgroup limit at least this large means "no limit" (v1 prints the page-rounded 2**63 - 1).
NO_LIMIT = 1 << 60
KMSG_MAX_RECORDS = 20_000
_KILLED = re.compile(r"(?:Killed process|oom-kill:.*?\bpid=)\s*(\d+)")


# ---------------------------------------------------------------- the task's memory cgroup
def memory_cgroup(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> dict[str, Any] | None:
    """``{"version", "dir", "events"}`` of this process's memory cgroup, or None when none is readable.

    cgroup v2 (``0::/path``) keeps the ``oom_kill`` counter in ``memory.events`` (under ``/sys/fs/cgroup``,
    or ``/sys/fs/cgroup/unified`` on a hybrid host when the memory controller is there); cgroup v1 in
    ``memory.oom_control`` of the ``memory`` hierarchy.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        relative = path.lstrip("/")
        if controllers == "":
            for base in (root, root / "unified"):
                events = base / relative / "memory.events"
                if events.is_file():
                    return {"version": 2, "dir": str(events.parent), "events": str(events)}
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        if "memory" in controllers.split(","):
            events = root / "memory" / path.lstrip("/") / "memory.oom_control"
            if events.is_file():
                return {"version": 1, "dir": str(events.parent), "events": str(events)}
    return None


def oom_kill_count(events_path: str | None) -> int | None:
    """The ``oom_kill`` counter of a cgroup's events file, or None when it cannot be read."""
    if not events_path:
        return None
    try:
        for line in Path(events_path).read_text().splitlines():
            name, _, number = line.partition(" ")
            if name == "oom_kill":
                return int(number)
    except (OSError, ValueError):
        return None
    return None


def is_cgroup_events_file(path: str | None, root: Path = CGROUP_ROOT) -> bool:
    """Only a cgroup's own counter file is read back from a start record (never any other path it names)."""
    if not path:
        return False
    candidate = Path(path)
    return (
        candidate.name in {"memory.events", "memory.oom_control"}
        and ".." not in candidate.parts
        and candidate.is_relative_to(root)
    )


def cgroup_memory_limit(cgroup: dict[str, Any] | None) -> int | None:
    """The memory limit of the cgroup in bytes, or None when it has none."""
    if not cgroup:
        return None
    name = "memory.max" if cgroup["version"] == 2 else "memory.limit_in_bytes"
    try:
        text = (Path(cgroup["dir"]) / name).read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        limit = int(text)
    except ValueError:
        return None
    return None if limit >= NO_LIMIT else limit


def machine_memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def worker_memory() -> dict[str, Any]:
    """The memory a task on this worker may use: its cgroup's limit when set, else the machine's RAM."""
    machine = machine_memory_bytes()
    limit = cgroup_memory_limit(memory_cgroup())
    if limit is not None and (machine is None or limit < machine):
        return {"bytes": limit, "source": "cgroup memory limit"}
    return {"bytes": machine, "source": "machine memory"}


# ---------------------------------------------------------------- staging space
def staging_space(url: str) -> dict[str, Any]:
    """Free and total bytes of the file system holding local staging; object storage is not measured."""
    if url.startswith("s3://"):
        return {"kind": "s3", "measured": False, "note": "object storage has no free space to measure"}
    path = Path(url.removeprefix("file://")).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent  # the folder is created on the first write: measure the disk it will be on
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return {"kind": "local", "measured": False, "note": f"{type(exc).__name__}: {exc}"}
    return {"kind": "local", "measured": True, "free_bytes": usage.free, "total_bytes": usage.total}


# ---------------------------------------------------------------- a try's start and end
def boot_id() -> str | None:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return None


def attempt_record(try_number: int) -> dict[str, Any]:
    """What the reconciler needs to tell how this try ended if it never writes its manifest."""
    cgroup = memory_cgroup()
    return {
        "try_number": try_number,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "boot_id": boot_id(),
        # Kernel log timestamps are microseconds of CLOCK_MONOTONIC: this try's start on that clock.
        "monotonic_started": time.monotonic(),
        "cgroup": cgroup,
        "oom_kill_before": oom_kill_count(cgroup["events"]) if cgroup else None,
    }


def task_resources(staging_url: str, peak_memory_bytes: int | None) -> dict[str, Any]:
    """The resource facts a task reports in its manifest: its peak, the worker's memory, staging space."""
    memory = worker_memory()
    return {
        "peak_memory_bytes": peak_memory_bytes,
        "worker_memory_bytes": memory["bytes"],
        "worker_memory_source": memory["source"],
        "host": socket.gethostname(),
        "staging": staging_space(staging_url),
    }


# ---------------------------------------------------------------- how a killed try ended
def kill_verdict(attempt: dict[str, Any] | None) -> dict[str, Any]:
    """``{"out_of_memory": True | False | None, "evidence": text, ...}`` for a try that wrote no manifest.

    True only on the OS's word: a kernel log line naming the try's pid as killed for memory, or (when the
    kernel log cannot be read) the try's cgroup ``oom_kill`` counter having risen. False when the OS was
    asked and recorded no such kill. None when it cannot be asked from here (no start record, another host
    or boot, unreadable files).
    """
    if not attempt:
        return {"out_of_memory": None, "evidence": "the try left no start record: the OS cannot be asked"}
    if attempt.get("host") != socket.gethostname() or attempt.get("boot_id") != boot_id():
        return {
            "out_of_memory": None,
            "evidence": f"the try ran on {attempt.get('host')!r} (or before a reboot); its cgroup and kernel "
            f"log are not readable from {socket.gethostname()!r}",
        }
    pid = attempt.get("pid")
    kernel = kernel_oom_kills(since=float(attempt.get("monotonic_started") or 0.0) - 1.0)
    cgroup = attempt.get("cgroup") or {}
    before = attempt.get("oom_kill_before")
    after = oom_kill_count(cgroup.get("events")) if is_cgroup_events_file(cgroup.get("events")) else None
    facts = {"pid": pid, "cgroup": cgroup.get("dir"), "oom_kill_before": before, "oom_kill_after": after}
    if kernel is not None:
        if pid in kernel:
            return {
                **facts,
                "out_of_memory": True,
                "evidence": f"kernel log: out-of-memory killer killed process {pid}",
            }
        if before is not None and after is not None and after > before and kernel:
            others = ", ".join(str(p) for p in sorted(kernel))
            return {
                **facts,
                "out_of_memory": False,
                "evidence": f"the cgroup's oom_kill counter rose {before}→{after}, but the kernel log names "
                f"{others}, not process {pid}",
            }
        if not (before is not None and after is not None and after > before):
            return {**facts, "out_of_memory": False, "evidence": "the kernel log records no OOM kill of it"}
        # The counter rose and the log names nobody (its ring buffer moved on): the counter decides.
    if before is None or after is None:
        return {
            **facts,
            "out_of_memory": None,
            "evidence": "neither the kernel log nor the cgroup is readable",
        }
    if after > before:
        return {
            **facts,
            "out_of_memory": True,
            "evidence": f"cgroup {cgroup.get('dir')}: oom_kill {before}→{after} while the try ran",
        }
    return {
        **facts,
        "out_of_memory": False,
        "evidence": f"cgroup {cgroup.get('dir')}: oom_kill stayed at {before}",
    }


def kernel_oom_kills(*, since: float = 0.0, path: str = KMSG) -> set[int] | None:
    """Pids the kernel log says the OOM killer killed after ``since`` (CLOCK_MONOTONIC s); None if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    killed: set[int] = set()
    try:
        for _ in range(KMSG_MAX_RECORDS):
            try:
                record = os.read(fd, 8192)
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # the ring buffer overwrote the record we were at: go on
                    continue
                break  # EAGAIN: the end of the log
            if not record:
                break
            header, _, message = record.decode(errors="replace").partition(";")
            fields = header.split(",")
            try:
                stamp = int(fields[2]) / 1_000_000
            except (IndexError, ValueError):
                continue
            if stamp < since:
                continue
            match = _KILLED.search(message)
            if match:
                killed.add(int(match.group(1)))
    finally:
        os.close(fd)
    return killed
