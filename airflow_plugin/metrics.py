"""Peak memory of the task process: reset at the start of a step (Linux), read at its end."""

from __future__ import annotations

import resource
import sys


def reset_peak_memory() -> None:
    """Reset the kernel's high-water mark (VmHWM) so the figure covers this step only; no-op elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            pass


def peak_memory_bytes() -> int:
    """The task process's peak resident memory since the last reset (or since it started)."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
