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
