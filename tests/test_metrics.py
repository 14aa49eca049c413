"""Scores from the accuracy matrix, checked against values computed by hand."""

import math

import numpy as np
import pytest

from continual.metrics import (
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
    learning_accuracy,
    summarize,
)

# Rows: after task i; columns: task j. Entries right of the diagonal are tasks not yet trained.
R = np.array([
    [0.9, 0.1, 0.2],
    [0.5, 0.8, 0.3],
    [0.4, 0.6, 0.7],
])
B = np.array([0.1, 0.2, 0.1])


def test_average_accuracy_uses_only_trained_tasks():
    assert average_accuracy(R) == pytest.approx((0.4 + 0.6 + 0.7) / 3)
    assert average_accuracy(R, after=0) == pytest.approx(0.9)
    assert average_accuracy(R, after=1) == pytest.approx((0.5 + 0.8) / 2)


def test_learning_accuracy_is_the_diagonal_mean():
    assert learning_accuracy(R) == pytest.approx((0.9 + 0.8 + 0.7) / 3)


def test_backward_transfer_by_hand():
    # ((0.4 - 0.9) + (0.6 - 0.8)) / 2
    assert backward_transfer(R) == pytest.approx(-0.35)
    assert backward_transfer(R, after=1) == pytest.approx(0.5 - 0.9)
    assert math.isnan(backward_transfer(R, after=0))


def test_forward_transfer_reads_the_entries_above_the_diagonal():
    # ((R[0,1] - b1) + (R[1,2] - b2)) / 2 = ((0.1 - 0.2) + (0.3 - 0.1)) / 2
    assert forward_transfer(R, B) == pytest.approx(0.05)
    assert math.isnan(forward_transfer(R, B, after=0))


def test_forgetting_takes_the_best_earlier_accuracy():
    M = np.array([
        [0.6, 0.0, 0.0],
        [0.9, 0.7, 0.0],   # task 0 improves after task 1 (positive backward transfer)
        [0.3, 0.5, 0.8],
    ])
    # task 0: max(0.6, 0.9) - 0.3 = 0.6; task 1: 0.7 - 0.5 = 0.2
    assert forgetting(M) == pytest.approx(0.4)
    # BWT compares with the diagonal, not the best: ((0.3-0.6) + (0.5-0.7)) / 2
    assert backward_transfer(M) == pytest.approx(-0.25)


def test_partial_matrix_of_a_run_that_stopped_early():
    partial = R[:2]  # two of three tasks trained
    s = summarize(partial, B)
    assert s["average_accuracy"] == pytest.approx(0.65)
    assert s["backward_transfer"] == pytest.approx(-0.4)
    assert s["forgetting"] == pytest.approx(0.4)
    assert s["forward_transfer"] == pytest.approx(0.1 - 0.2)


def test_no_forgetting_matrix():
    perfect = np.triu(np.ones((4, 4))) * 0 + np.tril(np.ones((4, 4)))
    assert backward_transfer(perfect) == 0.0
    assert forgetting(perfect) == 0.0
    assert average_accuracy(perfect) == 1.0


@pytest.mark.parametrize("bad", [np.zeros((3, 2)), np.zeros(3), np.zeros((0, 3))])
def test_malformed_matrix_is_rejected(bad):
    with pytest.raises(ValueError, match="accuracy matrix has shape"):
        average_accuracy(bad)


def test_baseline_of_wrong_length_is_rejected():
    with pytest.raises(ValueError, match="baseline"):
        forward_transfer(R, B[:2])


def test_summary_counts_the_whole_cost_and_both_readings():
    from continual.result import Result, TaskCost

    costs = [TaskCost(train_seconds=13.0, train_samples=100, eval_seconds=0.5,
                      strategy_seconds=68.0, train_steps=4),
             TaskCost(train_seconds=12.0, train_samples=100, eval_seconds=0.25,
                      strategy_seconds=0.0, train_steps=4),
             TaskCost(train_seconds=11.0, train_samples=100, eval_seconds=0.25,
                      strategy_seconds=1.0, train_steps=5)]
    result = Result(R, B, costs, stream={}, strategy="EWC()", seed=0, task_il_matrix=R + 0.1)
    s = result.summary
    assert (s["train_seconds"], s["strategy_seconds"], s["eval_seconds"]) == (36.0, 69.0, 1.0)
    assert s["total_seconds"] == pytest.approx(106.0) and s["train_steps"] == 13
    assert costs[0].total_seconds == pytest.approx(81.5)
    assert s["task_il_average_accuracy"] == pytest.approx(average_accuracy(R) + 0.1)
    assert s["task_il_forgetting"] == pytest.approx(forgetting(R))
    again = Result.from_dict(result.to_dict())
    np.testing.assert_array_equal(again.task_il_matrix, result.task_il_matrix)
    assert again.summary == s


def test_results_written_before_the_task_il_matrix_still_load():
    from continual.result import Result, TaskCost

    old = Result(R, B, [TaskCost(1.0, 10)] * 3, stream={}, strategy="FineTune()", seed=0).to_dict()
    del old["task_il_matrix"]
    for cost in old["cost"]:
        del cost["train_steps"]
    loaded = Result.from_dict(old)
    assert loaded.task_il_matrix is None and "task_il_average_accuracy" not in loaded.summary
    assert loaded.summary["total_seconds"] == pytest.approx(3.0)
