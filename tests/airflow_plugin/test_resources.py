"""What the OS says about a task: its memory cgroup, OOM kills (a real one, in a child cgroup), worker memory, disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from airflow_plugin import resources

# The child writes its start record (what the task runtime writes), then ends the way the test asks.
CHILD = """
import json, os, signal, sys
from airflow_plugin import resources
with open(sys.argv[1], "w") as out:
    json.dump(resources.attempt_record(1), out)
if sys.argv[2] == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
hog = bytearray(400 * 1024 * 1024)  # touched page by page: resident, not just reserved
for i in range(0, len(hog), 4096):
    hog[i] = 1
"""


def _child(tmp_path: Path, how: str, cgroup_dir: str | None = None) -> dict:
    record = tmp_path / f"attempt-{how}.json"

    def enter_cgroup():  # in the child, before it runs: the kernel then charges its memory to that cgroup
        if cgroup_dir:
            Path(cgroup_dir, "cgroup.procs").write_text(str(os.getpid()))

    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(record), how],
        preexec_fn=enter_cgroup,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=60,
    )
    assert done.returncode == -9, f"the child ended with {done.returncode}, not killed"
    return json.loads(record.read_text())


def test_memory_cgroup_v2_and_v1_layouts(tmp_path):
    proc = tmp_path / "cgroup"
    (tmp_path / "fs" / "task.scope").mkdir(parents=True)
    (tmp_path / "fs" / "task.scope" / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    proc.write_text("0::/task.scope\n")
    found = resources.memory_cgroup(proc, tmp_path / "fs")
    assert found["version"] == 2 and resources.oom_kill_count(found["events"]) == 2
    (tmp_path / "fs" / "memory" / "pod").mkdir(parents=True)
    (tmp_path / "fs" / "memory" / "pod" / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n"
    )
    proc.write_text("4:memory:/pod\n0::/\n")
    found = resources.memory_cgroup(proc, tmp_path / "fs")
    assert found["version"] == 1 and resources.oom_kill_count(found["events"]) == 5
    proc.write_text("1:cpu:/x\n")
    assert resources.memory_cgroup(proc, tmp_path / "fs") is None
    assert resources.oom_kill_count(str(tmp_path / "missing")) is None


def test_worker_memory_and_staging_space(tmp_path):
    memory = resources.worker_memory()
    assert memory["bytes"] > 0 and memory["source"] in {"cgroup memory limit", "machine memory"}
    local = resources.staging_space(str(tmp_path / "not" / "yet" / "there"))
    assert local["measured"] and 0 < local["free_bytes"] <= local["total_bytes"]
    s3 = resources.staging_space("s3://bucket/prefix")
    assert s3 == {"kind": "s3", "measured": False, "note": "object storage has no free space to measure"}


def test_kill_verdict_sigkilled_process_is_not_out_of_memory(tmp_path):
    attempt = _child(tmp_path, "sigkill")
    verdict = resources.kill_verdict(attempt)
    assert verdict["out_of_memory"] is False, verdict
    assert verdict["pid"] == attempt["pid"]


def test_kill_verdict_no_record_or_other_host_is_unknown():
    assert resources.kill_verdict(None)["out_of_memory"] is None
    other = {**resources.attempt_record(1), "host": "another-worker"}
    verdict = resources.kill_verdict(other)
    assert verdict["out_of_memory"] is None and "another-worker" in verdict["evidence"]


@pytest.fixture
def small_memory_cgroup():
    """A child of this process's memory cgroup with a 64 MiB limit (root may create one), removed afterwards."""
    own = resources.memory_cgroup()
    if own is None:
        pytest.skip("this machine exposes no memory cgroup to this process")
    child = Path(own["dir"]) / f"etl-test-{uuid.uuid4().hex[:8]}"
    try:
        child.mkdir()
        limit = child / ("memory.max" if own["version"] == 2 else "memory.limit_in_bytes")
        limit.write_text(str(64 * 1024 * 1024))
    except OSError as exc:
        if child.exists():
            child.rmdir()
        pytest.skip(f"cannot create a memory cgroup here: {exc}")
    yield str(child)
    child.rmdir()


def test_kill_verdict_oom_killed_process_is_out_of_memory(tmp_path, small_memory_cgroup):
    attempt = _child(tmp_path, "hog", cgroup_dir=small_memory_cgroup)
    assert attempt["cgroup"]["dir"] == small_memory_cgroup
    verdict = resources.kill_verdict(attempt)
    assert verdict["out_of_memory"] is True, verdict
    assert verdict["oom_kill_after"] == verdict["oom_kill_before"] + 1
    assert str(attempt["pid"]) in verdict["evidence"] or "oom_kill" in verdict["evidence"]


def test_kill_verdict_reads_only_cgroup_counter_files(tmp_path):
    forged = tmp_path / "memory.events"
    forged.write_text("oom_kill 9\n")
    attempt = {
        **resources.attempt_record(1),
        "cgroup": {"version": 2, "dir": str(tmp_path), "events": str(forged)},
    }
    assert resources.kill_verdict(attempt)["oom_kill_after"] is None
    assert not resources.is_cgroup_events_file("/sys/fs/cgroup/../../etc/memory.events")
    assert resources.is_cgroup_events_file("/sys/fs/cgroup/memory/x/memory.oom_control")
