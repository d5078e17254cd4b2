"""adventure.stats.percentile: numpy's default (linear) percentile, q in 0..100, None for no data."""
import numpy as np
import pytest

from adventure.stats import percentile


@pytest.mark.parametrize("values", [[3.0, 1.0, 2.0], [0.5, 0.1, 9.0, 2.2, 2.2, 7.5, 0.3], list(range(20)),
                                    list(np.random.default_rng(0).exponential(size=101))])
@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 95, 99, 100, 33.3])
def test_matches_numpy_linear(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-12)


def test_empty_is_none():
    assert percentile([], 95) is None
    assert percentile(iter(()), 50) is None


def test_one_value_is_every_percentile():
    assert [percentile([4.2], q) for q in (0, 50, 95, 100)] == [4.2] * 4


def test_bounds_are_min_and_max_and_q_outside_raises():
    values = [5, 1, 3]
    assert (percentile(values, 0), percentile(values, 100)) == (1.0, 5.0)
    for q in (-0.1, 100.1, 950):
        with pytest.raises(ValueError, match="0..100"):
            percentile(values, q)
