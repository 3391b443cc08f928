"""`sreops bench`: one module of benchmarks per stage, and the runner that gathers their rows."""

from __future__ import annotations

import resource


def peak_rss_mib() -> int:
    """This process's peak resident memory in MiB.

    Linux's `VmHWM` first: `ru_maxrss` of a child started from a large parent carries the
    parent's peak across `exec`, which would credit the child with the benchmark runner's memory.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
