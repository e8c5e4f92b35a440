"""Worker processes that never outlive their parent, and CPU counts that respect what this process may use.

`ProcessPoolExecutor` leaves its workers running when the parent is killed (kill -9, SIGTERM, a closed
terminal), and stopping it half-way can hang its manager thread. Here each worker has its own pipe and
watches its parent, exiting when it is gone; workers ignore Ctrl-C, and the parent stops them at once on
Ctrl-C or SIGTERM, so a run can be resumed from what it had finished.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
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


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    why: str
    """In words, for the log and metrics.json: what decided the count."""


def busy_cpus(before: str, after: str, cpus: Iterable[int]) -> float:
    """How many of `cpus` were busy between two readings of /proc/stat (`cpuN user nice system idle iowait
    ...` lines): the sum over those CPUs of the share of their time not idle."""

    def table(text: str) -> dict[int, list[int]]:
        rows = {}
        for line in text.splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit():
                rows[int(name[3:])] = [int(v) for v in fields[:8]]
        return rows

    start, end = table(before), table(after)
    busy = 0.0
    for cpu in cpus:
        if cpu in start and cpu in end:
            delta = [b - a for a, b in zip(start[cpu], end[cpu], strict=True)]
            total = sum(delta)
            idle = delta[3] + (delta[4] if len(delta) > 4 else 0)
            busy += (total - idle) / total if total > 0 else 0.0
    return busy


def _other_work(sample_s: float = 0.25) -> float | None:
    """CPUs of this process's set that other work keeps busy now (this process sleeps while it measures);
    None where /proc/stat is not there to tell."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        before = Path("/proc/stat").read_text()
        time.sleep(sample_s)
        after = Path("/proc/stat").read_text()
    except (OSError, AttributeError):
        return None
    return busy_cpus(before, after, cpus)


def choose_threads(asked: int, env: Mapping[str, str], other_work: float | None) -> ThreadChoice:
    """Torch's CPU threads: `asked` when given; else OMP_NUM_THREADS when set (torchrun sets it to 1); else,
    under a launcher that starts several processes on this machine (LOCAL_WORLD_SIZE), each its share of the
    usable CPUs; else the usable CPUs less those `other_work` keeps busy. Threads that outnumber the free cores
    spin waiting for each other, far slower than one thread."""
    if asked:
        return ThreadChoice(asked, f"--threads {asked}")
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        return ThreadChoice(int(omp), f"OMP_NUM_THREADS={omp}")
    cpus = usable_cpus()
    local = int(env["LOCAL_WORLD_SIZE"]) if env.get("LOCAL_WORLD_SIZE", "").isdigit() else 1
    share = max(1, cpus // max(local, 1))
    why = f"{cpus} usable CPUs" + (f" shared by {local} processes on this machine" if local > 1 else "")
    if other_work is None or other_work < 0.5:
        return ThreadChoice(share, why + (", idle" if other_work is not None else ""))
    free = max(1, min(share, round(cpus - other_work)))
    return ThreadChoice(free, f"{why}, {other_work:.1f} of them busy with other work")


def default_threads(asked: int = 0) -> ThreadChoice:
    """`choose_threads` for this process, now: reads the environment and, when it has to, how busy the CPUs
    are (a quarter of a second)."""
    if asked or os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        return choose_threads(asked, os.environ, None)
    return choose_threads(asked, os.environ, _other_work())


def resolve_workers(asked: int, jobs: int) -> int:
    """0 means one per usable CPU; never more workers than jobs."""
    return max(1, min(asked or usable_cpus(), max(1, jobs)))


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent:
            os._exit(1)  # the parent died: nobody will read our results


def _worker(fn: Callable[[Any], Any], conn: Connection, parent: int) -> None:
    """Run jobs from the pipe until told to stop (None) or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, job = message
        try:
            reply = ("ok", index, fn(job))
        except Exception as exc:  # sent back to the parent, which raises it
            reply = ("error", index, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # a result or an error that cannot be pickled: say so, in words
            conn.send(("error", index, RuntimeError(f"job {index}: its {reply[0]} reply cannot be sent back ({exc})")))


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (workers stopped, finished work kept) but exiting 143 as SIGTERM should."""


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated("terminated (SIGTERM)")


@contextlib.contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """Inside the block, SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread, so that a run
    stopped by `kill` or a scheduler ends like one stopped by Ctrl-C: workers stopped, finished work kept, one
    line. Elsewhere than the main thread it does nothing (signals go to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: Any = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class WorkerDied(RuntimeError):
    """A worker process ended without answering (killed, out of memory)."""


def ordered_map(fn: Callable[[Job], Result], jobs: Iterable[Job], workers: int) -> Iterator[Result]:
    """`fn` over `jobs`, results in job order; `workers` == 1 runs in this process (no pickling, easy to debug).

    Each worker gets one job at a time over its own pipe, so a worker that dies is noticed (WorkerDied names
    the job) instead of hanging the run. On Ctrl-C or SIGTERM the workers are stopped at once and
    KeyboardInterrupt propagates; what the finished jobs wrote stays for a resumed run."""
    job_list = list(jobs)
    if workers <= 1:
        for job in job_list:
            yield fn(job)
        return
    context = multiprocessing.get_context()
    pipes: list[Connection] = []
    processes: list[BaseProcess] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(raise_on_sigterm())
        stack.callback(_stop, pipes, processes)
        for _ in range(min(workers, len(job_list))):
            mine, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(fn, theirs, os.getpid()), daemon=True)
            process.start()
            theirs.close()
            pipes.append(mine)
            processes.append(process)
        yield from _dispatch(job_list, pipes, processes)


def _stop(pipes: list[Connection], processes: list[BaseProcess]) -> None:
    """Tell every worker to stop, and end those that do not at once."""
    for pipe in pipes:
        with contextlib.suppress(OSError):
            pipe.send(None)
        pipe.close()
    for started in processes:
        started.join(timeout=0.2)
        if started.is_alive():
            started.terminate()
            started.join()


def _dispatch(job_list: list[Any], pipes: list[Connection], processes: list[BaseProcess]) -> Iterator[Any]:
    busy: dict[int, int] = {}  # worker -> job index
    done: dict[int, Any] = {}
    queued = iter(enumerate(job_list))

    def feed(worker: int) -> None:
        for index, job in queued:
            pipes[worker].send((index, job))
            busy[worker] = index
            return

    emitted = 0
    for worker in range(len(pipes)):
        feed(worker)
    while emitted < len(job_list):
        while emitted in done:
            yield done.pop(emitted)
            emitted += 1
        if emitted == len(job_list):
            break
        waiting: dict[Any, int] = {pipes[w]: w for w in busy} | {processes[w].sentinel: w for w in busy}
        for ready in wait(list(waiting)):
            worker = waiting[ready]
            if worker not in busy:
                continue  # both its pipe and its sentinel were ready, and the pipe was read
            try:
                if not pipes[worker].poll():  # only its sentinel: it ended without answering
                    raise EOFError
                status, index, payload = pipes[worker].recv()
            except EOFError:
                processes[worker].join(timeout=1)
                raise WorkerDied(
                    f"a worker process ended (exit code {processes[worker].exitcode}) while on job {busy[worker]}"
                ) from None
            if status == "error":
                raise payload
            done[index] = payload
            del busy[worker]
            feed(worker)
