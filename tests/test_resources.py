"""CPUs and memory as the container sees them, from fake cgroup trees."""

from __future__ import annotations

import os

from features.resources import available_memory, cgroup_cpu_quota, parallel_workers, usable_cpus


def test_cpu_quota_v2_v1_and_unlimited(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_quota(v1) == 1.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    assert cgroup_cpu_quota(v1) is None
    assert cgroup_cpu_quota(tmp_path / "nothing") is None


def test_usable_cpus_take_the_smaller_of_affinity_and_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path) == affinity  # no quota files: the affinity mask
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU rounds up to one
    assert usable_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{(affinity + 8) * 100000} 100000\n")  # a quota above the mask
    assert usable_cpus(tmp_path) == affinity


def test_memory_limit_bounds_the_workers(tmp_path):
    (tmp_path / "memory.max").write_text(str(4 << 30))
    (tmp_path / "memory.current").write_text(str(3 << 30))
    assert available_memory(tmp_path) <= 1 << 30
    (tmp_path / "cpu.max").write_text("400000 100000\n")
    # 1 GiB free, half of it usable, 200 MiB a worker: 2 workers (at most the CPUs)
    assert parallel_workers(200 << 20, root=tmp_path) == min(2, usable_cpus(tmp_path))
    assert parallel_workers(10 << 30, root=tmp_path) == 1  # never zero


def test_openmp_threads_wait_passively_unless_the_user_chose():
    """Spinning OpenMP threads made two concurrent trainings on two cores 4x slower (113 s vs 31 s)."""
    import subprocess
    import sys

    code = "import os, models.ranker, lightgbm; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "PASSIVE"
    assert subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True,
                          text=True, check=True).stdout.strip() == "ACTIVE"


def test_freed_heap_goes_back_to_the_system():
    """Blocks freed between blocks still in use stay in the process's RSS until trimmed
    (the pages a BACI-scale fit's matrix would otherwise land on top of)."""
    import subprocess
    import sys

    script = """
import numpy as np, psutil
from features.resources import release_free_memory
blocks = [np.ones(8_000) for _ in range(20_000)]  # 64 KB each: glibc's heap, not mmap
keep = blocks[::10]
del blocks
before = psutil.Process().memory_info().rss
release_free_memory()
print(before, psutil.Process().memory_info().rss)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after = map(int, out.stdout.split())
    assert before > 1.0e9 and after < before - 0.8e9, (before, after)
