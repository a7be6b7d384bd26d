"""Learning-rate schedules against their formulas (Keras's definitions)."""
import math

import pytest

from cnnc.optimizers import schedules


def test_exponential_decay():
    s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    for step in (0, 1, 5, 10, 25):
        assert s(step) == pytest.approx(0.1 * 0.5 ** (step / 10))
    st = schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)
    assert [st(s_) for s_ in (0, 9, 10, 19, 20)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_inverse_time_and_polynomial():
    s = schedules.InverseTimeDecay(1.0, 4, 0.5)
    assert s(8) == pytest.approx(1.0 / (1 + 0.5 * 2))
    assert s(6) == pytest.approx(1.0 / (1 + 0.5 * 1.5))
    st = schedules.InverseTimeDecay(1.0, 4, 0.5, staircase=True)
    assert st(6) == pytest.approx(1.0 / (1 + 0.5 * 1))
    assert type(st).from_config(st.get_config())(7) == pytest.approx(st(7))
    p = schedules.PolynomialDecay(1.0, 10, end_learning_rate=0.1, power=2.0)
    assert p(5) == pytest.approx(0.9 * 0.25 + 0.1)
    assert p(50) == pytest.approx(0.1)
    c = schedules.PolynomialDecay(1.0, 10, end_learning_rate=0.0, cycle=True)
    assert c(15) == pytest.approx(1 - 15 / 20)


def test_piecewise_constant():
    s = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [s(x) for x in (0, 10, 11, 20, 21, 1000)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    with pytest.raises(ValueError, match="one more"):
        schedules.PiecewiseConstantDecay([1, 2], [1.0])


def test_cosine_decay_and_warmup():
    s = schedules.CosineDecay(0.2, decay_steps=100, alpha=0.1)
    for step in (0, 25, 50, 100, 150):
        k = min(step, 100)
        expected = 0.2 * ((1 - 0.1) * 0.5 * (1 + math.cos(math.pi * k / 100)) + 0.1)
        assert s(step) == pytest.approx(expected)
    w = schedules.CosineDecay(0.0, decay_steps=100, warmup_target=1.0, warmup_steps=10)
    assert w(0) == 0.0
    assert w(5) == pytest.approx(0.5)
    assert w(10) == pytest.approx(1.0)
    assert w(60) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert w(500) == pytest.approx(0.0)


def test_serialization_roundtrip():
    for s in (schedules.ExponentialDecay(0.1, 10, 0.9, staircase=True),
              schedules.PiecewiseConstantDecay([3], [0.1, 0.01]),
              schedules.CosineDecay(0.1, 50, warmup_target=0.2, warmup_steps=5)):
        back = schedules.deserialize(schedules.serialize(s))
        assert type(back) is type(s) and back.get_config() == s.get_config()
        assert [back(i) for i in range(0, 60, 7)] == [s(i) for i in range(0, 60, 7)]
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
