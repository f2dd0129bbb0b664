"""EPIC distance, detection metrics and correlations against hand-worked examples and their properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlmreward.errors import InvalidParameterError
from vlmreward.eval import (
    canonicalize,
    correlations,
    detection_metrics,
    epic_distance,
    epic_distance_transitions,
    pearson_distance,
)


def test_hand_worked_pearson_distances():
    # centred [-1, 0, 1] and [-1, 1, 0]: ρ = 1 / 2, D = sqrt((1 - 1/2) / 2) = 1/2
    assert epic_distance([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5, abs=1e-12)
    # centred [-.5, .5, -.5, .5] and [.5, .5, -.5, -.5] are orthogonal: ρ = 0, D = sqrt(1/2)
    assert epic_distance([0, 1, 0, 1], [1, 1, 0, 0]) == pytest.approx(math.sqrt(0.5), abs=1e-12)


def test_epic_properties_on_random_rewards():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(500)
    assert epic_distance(a, a) == pytest.approx(0.0, abs=1e-7)
    assert epic_distance(a, 3.7 * a - 12.0) == pytest.approx(0.0, abs=1e-7)  # positive scaling and shift
    assert epic_distance(a, -a) == pytest.approx(1.0, abs=1e-12)
    b = rng.standard_normal(500)
    d = epic_distance(a, b)
    assert 0.0 < d < 1.0 and d == pytest.approx(epic_distance(b, a))  # symmetric
    c = rng.standard_normal(500)
    assert epic_distance(a, c) <= epic_distance(a, b) + epic_distance(b, c) + 1e-12  # triangle inequality


def test_constant_reward_has_no_defined_distance():
    assert math.isnan(pearson_distance([1.0, 1.0, 1.0], [0.0, 1.0, 2.0]))
    assert all(math.isnan(v) for v in correlations([2, 2, 2], [1, 2, 3]).values())


@pytest.mark.parametrize("a, b, message", [([1.0], [1.0], "at least 2"), ([1, 2, 3], [1, 2], "paired"), ([1, np.nan], [1, 2], "NaN")])
def test_bad_reward_samples_are_rejected(a, b, message):
    with pytest.raises(InvalidParameterError, match=message):
        epic_distance(a, b)


def test_canonicalisation_hand_worked():
    """R(s, a, s') = s' over states {0, 1}: C(R) = s' + γ·½ - ½ - γ·½ = s' - ½."""
    reward = lambda s, a, s2: s2[:, 0].astype(float)  # noqa: E731
    states = np.array([[0.0], [1.0], [1.0]])
    next_states = np.array([[1.0], [0.0], [1.0]])
    actions = np.zeros((3, 1))
    coverage = np.array([[0.0], [1.0]])
    canonical = canonicalize(reward, states, actions, next_states, coverage, np.zeros((2, 1)), gamma=0.9)
    np.testing.assert_allclose(canonical, [0.5, -0.5, 0.5], atol=1e-12)


def _transition_sample(seed: int = 0):
    rng = np.random.default_rng(seed)
    states, next_states = rng.standard_normal((200, 3)), rng.standard_normal((200, 3))
    actions = rng.standard_normal((200, 1))
    return states, actions, next_states, rng.standard_normal((50, 3)), rng.standard_normal((50, 1))


def _base_reward(s, a, s2):
    return np.sin(s2[:, 0]) + 0.5 * s[:, 1] * a[:, 0] - s2[:, 2] ** 2


def test_epic_transitions_is_invariant_to_potential_shaping_and_scaling():
    gamma = 0.9
    sample = _transition_sample()
    potential = lambda s: np.cos(s[:, 0]) + s[:, 1] ** 3  # noqa: E731
    shaped = lambda s, a, s2: 2.5 * (_base_reward(s, a, s2) + gamma * potential(s2) - potential(s))  # noqa: E731
    assert epic_distance_transitions(_base_reward, shaped, *sample, gamma=gamma) == pytest.approx(0.0, abs=1e-6)
    # the plain Pearson distance of the raw rewards does see the shaping
    s, a, s2 = sample[:3]
    assert pearson_distance(_base_reward(s, a, s2), shaped(s, a, s2)) > 0.05
    negated = lambda s, a, s2: -_base_reward(s, a, s2)  # noqa: E731
    assert epic_distance_transitions(_base_reward, negated, *sample, gamma=gamma) == pytest.approx(1.0, abs=1e-9)


def test_state_form_equals_transition_form_for_next_state_rewards():
    states, actions, next_states, _, coverage_actions = _transition_sample(1)
    f = lambda s, a, s2: np.tanh(s2[:, 0] + s2[:, 1])  # noqa: E731
    g = lambda s, a, s2: s2[:, 0] - 0.3 * s2[:, 2]  # noqa: E731
    general = epic_distance_transitions(f, g, states, actions, next_states, next_states[:50], coverage_actions, gamma=0.99)
    state_form = epic_distance(f(None, None, next_states), g(None, None, next_states))
    assert general == pytest.approx(state_form, abs=1e-9)


def test_detection_metrics_hand_worked():
    """scikit-learn's own example: AP 0.83, ROC-AUC 0.75; best F1 0.8 at threshold 0.35 (P = 2/3, R = 1)."""
    metrics = detection_metrics([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert metrics.average_precision == pytest.approx(0.8333333, abs=1e-6)
    assert metrics.roc_auc == pytest.approx(0.75)
    assert metrics.best_f1 == pytest.approx(0.8) and metrics.best_threshold == pytest.approx(0.35)
    assert (metrics.positives, metrics.n) == (2, 4)
    assert len(metrics.precision) == len(metrics.recall) == len(metrics.thresholds) + 1
    assert set(metrics.summary()) == {"average_precision", "roc_auc", "best_f1", "best_threshold", "positives", "n"}


def test_perfect_and_inverted_detectors():
    labels = np.array([0, 0, 0, 1, 1])
    assert detection_metrics([0.1, 0.2, 0.3, 0.8, 0.9], labels).average_precision == pytest.approx(1.0)
    assert detection_metrics([0.9, 0.8, 0.7, 0.2, 0.1], labels).roc_auc == pytest.approx(0.0)


@pytest.mark.parametrize(
    "rewards, labels, message",
    [([0.1, 0.2], [1, 1], "all positive"), ([0.1, 0.2], [0, 0], "all negative"), ([0.1, 0.2, 0.3], [0, 1], "paired"), ([0.1, 0.2], [0, 2], "0/1")],
)
def test_detection_metrics_need_two_classes_and_paired_labels(rewards, labels, message):
    with pytest.raises(InvalidParameterError, match=message):
        detection_metrics(rewards, labels)


def test_correlations():
    x = np.linspace(0.1, 3.0, 50)
    result = correlations(x, np.exp(x))
    assert result["spearman"] == pytest.approx(1.0) and 0.8 < result["pearson"] < 0.99
