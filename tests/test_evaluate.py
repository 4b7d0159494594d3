"""Retrieval metrics on known rankings."""

import pytest

from indexer.evaluate import percentile, rank_metrics


def test_rank_metrics_on_known_rankings():
    rankings = [["a", "b"], ["x", "a"], ["x", "y", "z", "w", "v", "a"], ["x"] * 10 + ["a"], []]
    relevant = [["a"], ["a"], ["a"], ["a"], ["a"]]
    metrics = rank_metrics(rankings, relevant)
    assert metrics["recall@1"] == pytest.approx(1 / 5)
    assert metrics["recall@5"] == pytest.approx(2 / 5)
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 6) / 5, abs=1e-4)


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile([], 95) == 0.0
