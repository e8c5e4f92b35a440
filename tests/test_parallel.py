from __future__ import annotations

import os

import pytest

from iamchars.parallel import WorkerDied, ordered_map


def _square_slowly_first(x: int) -> int:
    if x == 0:
        import time

        time.sleep(0.2)  # the first job finishes last: results must still come in job order
    return x * x


def _fails_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad job {x}")
    return x


def _dies_on_two(x: int) -> int:
    if x == 2:
        os._exit(7)
    return x


def test_results_come_in_job_order_from_any_number_of_workers() -> None:
    for workers in (1, 2, 3):
        assert list(ordered_map(_square_slowly_first, range(7), workers)) == [x * x for x in range(7)]
    assert list(ordered_map(_square_slowly_first, [], 2)) == []


def test_a_failing_job_raises_its_own_error_and_a_dead_worker_is_named() -> None:
    with pytest.raises(ValueError, match="bad job 3"):
        list(ordered_map(_fails_on_three, range(6), 2))
    with pytest.raises(WorkerDied, match=r"exit code 7.*job 2"):
        list(ordered_map(_dies_on_two, range(6), 2))


def test_threads_respect_the_user_the_launcher_and_other_work() -> None:
    from iamchars.parallel import busy_cpus, choose_threads, usable_cpus

    cpus = usable_cpus()
    assert choose_threads(3, {"OMP_NUM_THREADS": "1"}, None).threads == 3
    assert choose_threads(0, {"OMP_NUM_THREADS": "1"}, 0.0).why == "OMP_NUM_THREADS=1"
    assert choose_threads(0, {}, 0.0).threads == cpus
    assert choose_threads(0, {"LOCAL_WORLD_SIZE": str(2 * cpus)}, 0.0).threads == 1  # torchrun without OMP_...
    busy = choose_threads(0, {}, float(cpus))  # every core taken by other work: one thread, not a spinning crowd
    assert busy.threads == 1 and "busy with other work" in busy.why
    before = "cpu  9 0 0 9 0 0 0 0\ncpu0 100 0 0 100 0 0 0 0\ncpu1 100 0 0 100 0 0 0 0\n"
    after = "cpu  9 0 0 9 0 0 0 0\ncpu0 200 0 0 100 0 0 0 0\ncpu1 150 0 0 150 0 0 0 0\n"
    assert busy_cpus(before, after, [0, 1]) == 1.5 and busy_cpus(before, after, [1]) == 0.5
