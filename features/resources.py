"""What this process may use: CPUs (affinity and the cgroup's CPU quota) and memory (cgroup limit, free RAM).

``os.cpu_count()`` reports the machine's CPUs, not the container's: a job limited to 2 CPUs on a
64-core host would start 64 threads and thrash. The cgroup files are read from ``root`` (a
parameter, so tests can point it at a fake tree).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP) -> float | None:
    """CPUs allowed by the cgroup's quota (v2 ``cpu.max``, else v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``); None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus(root: Path = CGROUP) -> int:
    """min(CPUs in this process's affinity mask, the cgroup's CPU quota rounded up), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def available_memory(root: Path = CGROUP, meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes this process may still allocate: free RAM (MemAvailable), capped by the cgroup's limit minus its usage."""
    free = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = (root / limit_file).read_text().strip()
            if limit != "max" and int(limit) < 1 << 60:
                room = int(limit) - int((root / usage_file).read_text())
                free = room if free is None else min(free, room)
            break
        except (OSError, ValueError):
            continue
    return free


def parallel_workers(bytes_per_worker: int, *, root: Path = CGROUP, headroom: float = 0.5) -> int:
    """Workers for a step whose every worker holds ``bytes_per_worker``: one per usable CPU, fewer if
    ``headroom`` of the available memory would not hold them all."""
    workers = usable_cpus(root)
    memory = available_memory(root)
    if memory is not None and bytes_per_worker > 0:
        workers = min(workers, max(1, int(memory * headroom // bytes_per_worker)))
    return workers


def release_free_memory() -> None:
    """Hand memory that is free but still held back to the operating system: Arrow's pool and
    glibc's heap (``malloc_trim(0)``; nothing on other C libraries).

    After large tables are dropped both keep the pages for reuse, so the next big allocation (a
    training matrix) lands on top of them and the process's peak RSS is their sum.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once (``find_library`` runs ``ldconfig``); None elsewhere."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
