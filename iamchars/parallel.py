"""Worker processes that never outlive their parent, and CPU counts that respect what this process may use.

`ProcessPoolExecutor` alone leaves its workers running when the parent is killed (kill -9, SIGTERM, a closed
terminal): they wait forever on a queue whose write end they hold themselves. Here every worker watches its
parent and exits when it is gone; workers ignore Ctrl-C, and the parent stops them at once on Ctrl-C or
SIGTERM, so a run can be resumed from what it had finished.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")

PARENT_CHECK_S = 0.5


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (containers)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(Path("/sys/fs/cgroup"))
    if quota is not None:
        count = min(count, max(1, int(quota + 0.5)))
    return max(1, count)


def _cgroup_cpu_quota(root: Path) -> float | None:
    """cgroup v2 `cpu.max` (`quota period`, or `max`) as a number of CPUs; None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return float(quota) / float(period)
    except (ValueError, ZeroDivisionError):
        return None


def resolve_workers(asked: int, jobs: int) -> int:
    """0 means one per usable CPU; never more workers than jobs."""
    return max(1, min(asked or usable_cpus(), max(1, jobs)))


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent:
            os._exit(1)  # the parent died: nobody will read our results


def _worker_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (workers stopped, finished work kept) but exiting 143 as SIGTERM should."""


def _raise_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated("terminated (SIGTERM)")


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now, not after the queued jobs."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def ordered_map(fn: Callable[[Job], Result], jobs: Iterable[Job], workers: int) -> Iterator[Result]:
    """`fn` over `jobs`, results in job order; `workers` == 1 runs in this process (no pickling, easy to debug).

    On Ctrl-C or SIGTERM the workers stop at once and KeyboardInterrupt propagates; what the finished jobs
    wrote stays for a resumed run."""
    job_list = list(jobs)
    if workers <= 1:
        for job in job_list:
            yield fn(job)
        return
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    pool = ProcessPoolExecutor(workers, initializer=_worker_init, initargs=(os.getpid(),))
    finished = False
    try:
        yield from pool.map(fn, job_list, chunksize=1)
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop(pool)
        if in_main:
            signal.signal(signal.SIGTERM, previous)
