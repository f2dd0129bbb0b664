"""Rewards checked against independent float64 NumPy computations of the papers' formulas.

* Goal-baseline (Rocamonde et al., ICLR 2024, eq. 3; reference code AlignmentResearch/vlmrm):
  ``R(x) = 1 - ½ ‖(x - g) M‖²`` with ``M = α P + (1 - α) I``, ``P = d dᵀ / ‖d‖²``, ``d = g - b``,
  ``g``/``b`` the (not re-normalised) means of the unit prompt embeddings. The oracle builds ``M``
  explicitly and evaluates the norm row by row, as the reference code does; it shares no algebra
  with the implementation's ``O(N·D)`` closed form.
* Softmax (Baumli et al. 2023, eq. 1-2): ``p(l | x) = softmax(x·t / τ)`` over the goal and the
  negatives, ``r = 1[p ≥ β]``; the oracle computes exp/sum in float64 with the max subtracted.

Known text embeddings come from :class:`FixedTextModel`, a test-only
:class:`~vlmreward.models.base.VisionLanguageModel` whose ``_embed_prompts`` looks prompts up in
a dict of raw (deliberately *not* unit-norm) vectors, so the real ``encode_text`` path
(validation, L2 normalisation, caching) runs unchanged.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from vlmreward import load_model  # noqa: F401  (the integration fixture loads through it)
from vlmreward.errors import InvalidParameterError, PromptError, PromptTooLongError
from vlmreward.models.base import VisionLanguageModel
from vlmreward.models.preprocess import PreprocessConfig
from vlmreward.rewards import GoalBaselineReward, SoftmaxThresholdReward

N = 50
RTOL, ATOL = 1e-5, 1e-6

GOALS = ["goal zero", "goal one", "goal two"]
BASELINES = ["baseline zero", "baseline one"]
NEGATIVES = [f"negative {i}" for i in range(5)]
TWIN = "twin of goal zero"  # a different prompt with exactly the same raw vector as GOALS[0]


# ---------------------------------------------------------------------------------------------
# test-only model with fixed text embeddings
# ---------------------------------------------------------------------------------------------
class FixedTextModel(VisionLanguageModel):
    """Text embeddings from a dict prompt → raw vector; counts every ``_embed_prompts`` call."""

    backend = "fixed"

    def __init__(self, vectors: dict[str, np.ndarray], name: str = "fixed-text-test-model") -> None:
        dim = len(next(iter(vectors.values())))
        super().__init__(
            name=name,
            embed_dim=dim,
            context_length=77,
            preprocess_config=PreprocessConfig(image_size=224, mean=(0.5,) * 3, std=(0.5,) * 3),
            device=torch.device("cpu"),
            dtype=torch.float32,
        )
        self.vectors = {p: torch.as_tensor(np.asarray(v, dtype=np.float32)) for p, v in vectors.items()}
        self.calls: list[list[str]] = []

    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise AssertionError("the reward tests feed embeddings; no image should be embedded")

    def _embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        self.calls.append(list(prompts))
        return torch.stack([self.vectors[p] for p in prompts])

    def count_tokens(self, prompt: str) -> int:
        return len(prompt.split()) + 2

    def embedded_prompt_counts(self) -> Counter:
        return Counter(p for call in self.calls for p in call)


def raw_vectors(dim: int, seed: int) -> dict[str, np.ndarray]:
    """Random float32 vectors of random norms (0.3 … 3), one per test prompt."""
    rng = np.random.default_rng(seed)
    prompts = GOALS + BASELINES + NEGATIVES
    out = {}
    for p in prompts:
        v = rng.standard_normal(dim)
        out[p] = (v / np.linalg.norm(v) * rng.uniform(0.3, 3.0)).astype(np.float32)
    out[TWIN] = out[GOALS[0]].copy()
    return out


@pytest.fixture()
def make_model():
    def make(dim: int = 32, seed: int = 0) -> FixedTextModel:
        return FixedTextModel(raw_vectors(dim, seed))

    return make


@pytest.fixture()
def model(make_model) -> FixedTextModel:
    return make_model(32, 0)


# ---------------------------------------------------------------------------------------------
# independent float64 oracles
# ---------------------------------------------------------------------------------------------
def ref_text(model: FixedTextModel, prompts: list[str]) -> np.ndarray:
    """Unit text embeddings ``[M, D]`` float64, normalised here from the raw float32 vectors."""
    rows = []
    for p in prompts:
        v = model.vectors[p].numpy().astype(np.float64)
        rows.append(v / np.sqrt(np.sum(v * v)))
    return np.stack(rows)


def ref_goal_baseline(x, goal_emb: np.ndarray, baseline_emb: np.ndarray | None, alpha: float) -> np.ndarray:
    """``1 - ½‖(x - g) @ M‖²`` row by row, ``M = αP + (1-α)I`` built explicitly (vlmrm reference code)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    dim = x.shape[1]
    g = goal_emb.mean(axis=0)  # not re-normalised
    identity = np.eye(dim)
    if baseline_emb is None:
        assert alpha == 0.0
        M = identity
    else:
        b = baseline_emb.mean(axis=0)
        d = (g - b)[:, None]  # column vector
        P = (d @ d.T) / float((d.T @ d)[0, 0])
        M = alpha * P + (1.0 - alpha) * identity
    out = np.empty(x.shape[0])
    for i, row in enumerate(x):
        y = (row - g)[None, :] @ M
        out[i] = 1.0 - 0.5 * float(np.sum(y * y))
    return out


def ref_softmax_probs(x, goal_emb: np.ndarray, neg_emb: np.ndarray, tau: float) -> np.ndarray:
    """``[N, 1 + k]`` probabilities over (goal ensemble, negatives), float64, max subtracted."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    g = goal_emb.mean(axis=0)
    g = g / np.sqrt(np.sum(g * g))  # prompt ensemble: re-normalised mean
    texts = np.vstack([g[None, :], neg_emb])
    logits = np.array([[float(np.dot(row, t)) / tau for t in texts] for row in x])
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol)


# =============================================================================================
# GoalBaselineReward
# =============================================================================================
@pytest.mark.parametrize("dim", [16, 64])
@pytest.mark.parametrize("n_goals", [1, 3])
@pytest.mark.parametrize("n_baselines", [1, 2])
@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_goal_baseline_matches_matrix_formula(make_model, unit_vectors, dim, n_goals, n_baselines, alpha):
    model = make_model(dim, seed=dim + n_goals)
    goal, baseline = GOALS[:n_goals], BASELINES[:n_baselines]
    x = unit_vectors(N, dim, seed=1)
    reward = GoalBaselineReward(model, goal if n_goals > 1 else goal[0], baseline, alpha=alpha)
    expected = ref_goal_baseline(x, ref_text(model, goal), ref_text(model, baseline), alpha)
    got = reward.from_embeddings(x)
    assert got.dtype == np.float32 and got.shape == (N,)
    close(got, expected)


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.75])
def test_goal_baseline_alpha_changes_reward(model, unit_vectors, alpha):
    """α is actually applied: the reward differs from the α = 0 reward (and matches the oracle)."""
    x = unit_vectors(N, 32, seed=2)
    r0 = GoalBaselineReward(model, GOALS[0], BASELINES[0], alpha=0.0).from_embeddings(x)
    ra = GoalBaselineReward(model, GOALS[0], BASELINES[0], alpha=alpha).from_embeddings(x)
    assert np.max(np.abs(ra - r0)) > 1e-2
    close(ra, ref_goal_baseline(x, ref_text(model, GOALS[:1]), ref_text(model, BASELINES[:1]), alpha))


@pytest.mark.parametrize("baseline", [None, BASELINES[0]])
def test_goal_baseline_alpha0_single_goal_is_cosine(model, unit_vectors, baseline):
    x = unit_vectors(N, 32, seed=3)
    g = ref_text(model, [GOALS[1]])[0]
    cosine = x.astype(np.float64) @ g
    got = GoalBaselineReward(model, GOALS[1], baseline, alpha=0.0).from_embeddings(x)
    close(got, cosine)


def test_goal_baseline_alpha0_several_goals_affine_in_mean(model, unit_vectors):
    x = unit_vectors(N, 32, seed=4).astype(np.float64)
    g_bar = ref_text(model, GOALS).mean(axis=0)
    expected = 0.5 + x @ g_bar - 0.5 * float(g_bar @ g_bar)
    got = GoalBaselineReward(model, GOALS).from_embeddings(x.astype(np.float32))
    close(got, expected)
    # the mean must not be re-normalised: that would give a clearly different reward
    assert np.linalg.norm(g_bar) < 0.9
    renormalised = x @ (g_bar / np.linalg.norm(g_bar))
    assert np.max(np.abs(got - renormalised)) > 1e-2


def _orthogonal_to(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.standard_normal(d.shape[0])
    u -= (u @ d) / (d @ d) * d
    return u / np.linalg.norm(u)


def test_goal_baseline_alpha1_invariant_orthogonal_to_direction(model, unit_vectors):
    goal_emb, base_emb = ref_text(model, GOALS[:1]), ref_text(model, BASELINES[:1])
    d = goal_emb.mean(0) - base_emb.mean(0)
    d_hat = d / np.linalg.norm(d)
    reward = GoalBaselineReward(model, GOALS[0], BASELINES[0], alpha=1.0)
    rng = np.random.default_rng(5)
    x = unit_vectors(N, 32, seed=5).astype(np.float64)
    base = reward.from_embeddings(x.astype(np.float32))

    # add a component orthogonal to d: unchanged
    shift = np.stack([0.7 * _orthogonal_to(d, rng) for _ in range(N)])
    moved = reward.from_embeddings((x + shift).astype(np.float32))
    close(moved, base)
    # also for unit vectors with the same component along d but different orthogonal parts
    along = x @ d_hat
    other = along[:, None] * d_hat + np.sqrt(1 - along**2)[:, None] * np.stack([_orthogonal_to(d, rng) for _ in range(N)])
    close(reward.from_embeddings(other.astype(np.float32)), base)

    # a move along d changes it, by exactly what the formula says
    step = x + 0.3 * d_hat
    stepped = reward.from_embeddings(step.astype(np.float32))
    expected = ref_goal_baseline(step, goal_emb, base_emb, 1.0)
    close(stepped, expected)
    assert np.min(np.abs(stepped - base)) > 1e-3


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("goal", [GOALS[:1], GOALS])
def test_goal_baseline_reward_of_goal_is_exactly_one(model, alpha, goal):
    g = model.encode_text(goal).mean(dim=0)
    reward = GoalBaselineReward(model, goal, BASELINES, alpha=alpha)
    got = reward.from_embeddings(g)
    assert got.dtype == np.float32 and got.shape == (1,)
    assert got[0] == 1.0
    # and it is the maximum: every other embedding scores less
    assert np.all(reward.from_embeddings(np.random.default_rng(0).standard_normal((N, 32))) < 1.0)


def test_goal_baseline_single_embedding_shape(model, unit_vectors):
    x = unit_vectors(N, 32, seed=6)
    reward = GoalBaselineReward(model, GOALS[0], BASELINES[0], alpha=0.5)
    batch = reward.from_embeddings(x)
    one = reward.from_embeddings(x[7])
    assert one.dtype == np.float32 and one.shape == (1,)
    close(one, batch[7:8].astype(np.float64), rtol=0, atol=1e-7)
    close(one, ref_goal_baseline(x[7], ref_text(model, GOALS[:1]), ref_text(model, BASELINES[:1]), 0.5))


def test_goal_baseline_torch_and_numpy_inputs_agree(model, unit_vectors):
    x = unit_vectors(N, 32, seed=7)
    reward = GoalBaselineReward(model, GOALS[:2], BASELINES, alpha=0.5)
    from_numpy = reward.from_embeddings(x)
    from_torch = reward.from_embeddings(torch.from_numpy(x))
    from_float64 = reward.from_embeddings(x.astype(np.float64))
    assert isinstance(from_torch, np.ndarray) and from_torch.dtype == np.float32 and from_torch.shape == (N,)
    np.testing.assert_array_equal(from_numpy, from_torch)
    np.testing.assert_array_equal(from_numpy, from_float64)
    close(from_numpy, ref_goal_baseline(x, ref_text(model, GOALS[:2]), ref_text(model, BASELINES), 0.5))


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_goal_baseline_alpha_out_of_range(model, alpha):
    with pytest.raises(InvalidParameterError):
        GoalBaselineReward(model, GOALS[0], BASELINES[0], alpha=alpha)


@pytest.mark.parametrize("alpha", [0.25, 1.0])
def test_goal_baseline_alpha_without_baseline(model, alpha):
    with pytest.raises(InvalidParameterError):
        GoalBaselineReward(model, GOALS[0], alpha=alpha)


@pytest.mark.parametrize("baseline", [GOALS[0], TWIN, [GOALS[0]]])
def test_goal_baseline_goal_equal_to_baseline(model, baseline):
    """Same prompt, or a different prompt with the same embedding: d = 0, no direction."""
    with pytest.raises(InvalidParameterError):
        GoalBaselineReward(model, GOALS[0], baseline, alpha=0.5)


@pytest.mark.parametrize("goal", ["", "   ", [], [GOALS[0], ""]])
def test_goal_baseline_empty_goal(model, goal):
    with pytest.raises(PromptError):
        GoalBaselineReward(model, goal, BASELINES[0], alpha=0.5)


def test_goal_baseline_empty_baseline(model):
    with pytest.raises(PromptError):
        GoalBaselineReward(model, GOALS[0], "", alpha=0.5)


def test_overlong_prompt_is_a_prompt_error(model):
    long_prompt = " ".join(["word"] * 80)  # 82 tokens > 77
    with pytest.raises(PromptTooLongError):
        GoalBaselineReward(model, long_prompt)
    with pytest.raises(PromptError):
        SoftmaxThresholdReward(model, GOALS[0], [long_prompt])


@pytest.mark.parametrize("bad_shape", [(N, 33), (N, 31), (31,), (2, N, 32), (N, 0)])
def test_goal_baseline_wrong_embedding_width(model, bad_shape):
    reward = GoalBaselineReward(model, GOALS[0], BASELINES[0], alpha=0.5)
    with pytest.raises(InvalidParameterError):
        reward.from_embeddings(np.zeros(bad_shape, dtype=np.float32))


# =============================================================================================
# SoftmaxThresholdReward
# =============================================================================================
@pytest.mark.parametrize("dim", [16, 64])
@pytest.mark.parametrize("temperature", [0.01, 0.1, 1.0])
@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("n_goals", [1, 3])
def test_softmax_matches_independent_softmax(make_model, unit_vectors, dim, temperature, k, n_goals):
    model = make_model(dim, seed=100 + dim)
    goal, negatives = GOALS[:n_goals], NEGATIVES[:k]
    x = unit_vectors(N, dim, seed=8)
    reward = SoftmaxThresholdReward(model, goal if n_goals > 1 else goal[0], negatives, temperature=temperature)
    probs = ref_softmax_probs(x, ref_text(model, goal), ref_text(model, negatives), temperature)
    got = reward.from_embeddings(x)
    assert got.dtype == np.float32 and got.shape == (N,)
    close(got, probs[:, 0])
    # the dense variant is a probability, not a hard decision
    assert len(np.unique(got)) > N // 2


def test_softmax_default_temperature_is_clip_logit_scale(model, unit_vectors):
    x = unit_vectors(N, 32, seed=9)
    got = SoftmaxThresholdReward(model, GOALS[0], NEGATIVES[:3]).from_embeddings(x)
    close(got, ref_softmax_probs(x, ref_text(model, GOALS[:1]), ref_text(model, NEGATIVES[:3]), 0.01)[:, 0])


@pytest.mark.parametrize("temperature", [0.1, 1.0])
@pytest.mark.parametrize("k", [1, 5])
def test_softmax_is_a_distribution_over_goal_and_negatives(model, unit_vectors, temperature, k):
    """p ∈ (0, 1), and p(m | x) for each of the 1 + k prompts taken as goal (the others as negatives)
    sums to 1, as the independent softmax does."""
    x = unit_vectors(N, 32, seed=10)
    prompts = [GOALS[0]] + NEGATIVES[:k]
    per_prompt = np.stack(
        [
            SoftmaxThresholdReward(model, p, [q for q in prompts if q != p], temperature=temperature).from_embeddings(x)
            for p in prompts
        ],
        axis=1,
    ).astype(np.float64)  # [N, 1 + k]
    assert np.all(per_prompt > 0.0) and np.all(per_prompt < 1.0)
    probs = ref_softmax_probs(x, ref_text(model, prompts[:1]), ref_text(model, prompts[1:]), temperature)
    close(probs.sum(axis=1), np.ones(N), rtol=0, atol=1e-12)
    close(per_prompt, probs)
    close(per_prompt.sum(axis=1), np.ones(N), rtol=0, atol=1e-5)


def test_softmax_goal_ensemble_uses_renormalised_mean(model, unit_vectors):
    x = unit_vectors(N, 32, seed=11)
    goal_emb, neg_emb = ref_text(model, GOALS), ref_text(model, NEGATIVES[:3])
    tau = 0.1
    got = SoftmaxThresholdReward(model, GOALS, NEGATIVES[:3], temperature=tau).from_embeddings(x).astype(np.float64)
    close(got, ref_softmax_probs(x, goal_emb, neg_emb, tau)[:, 0])
    # not the plain (un-normalised) mean, nor only the first phrasing
    g_bar = goal_emb.mean(0)
    logits = np.c_[x @ g_bar, x @ neg_emb.T] / tau
    plain = np.exp(logits - logits.max(1, keepdims=True))
    plain = plain[:, 0] / plain.sum(1)
    assert np.max(np.abs(got - plain)) > 1e-2
    first_only = ref_softmax_probs(x, goal_emb[:1], neg_emb, tau)[:, 0]
    assert np.max(np.abs(got - first_only)) > 1e-2


def _one_probability(model, x_row) -> np.float32:
    p = SoftmaxThresholdReward(model, GOALS[0], NEGATIVES[:3], temperature=0.1).from_embeddings(x_row)
    assert p.dtype == np.float32 and p.shape == (1,) and 0.0 < p[0] < 1.0
    return p[0]


def test_softmax_threshold_exactly_at_p(model, unit_vectors):
    x = unit_vectors(1, 32, seed=12)[0]
    p = _one_probability(model, x)  # np.float32

    def thresholded(beta):
        return SoftmaxThresholdReward(model, GOALS[0], NEGATIVES[:3], temperature=0.1, threshold=beta).from_embeddings(x)

    at = thresholded(float(p))
    assert at.dtype == np.float32 and at.tolist() == [1.0]  # p ≥ β with β = p
    above = np.nextafter(p, np.float32(1))  # next float32 above p
    assert above > p
    assert thresholded(above).tolist() == [0.0]
    assert thresholded(np.nextafter(p, np.float32(0))).tolist() == [1.0]


def test_softmax_threshold_compared_at_full_precision(model, unit_vectors):
    """r = 1[p ≥ β]: a float threshold strictly above p gives 0, even when it is closer to p
    than float32's resolution (the threshold must not be rounded to float32 before comparing)."""
    x = unit_vectors(1, 32, seed=12)[0]
    p = _one_probability(model, x)
    beta = float(np.nextafter(np.float64(p), 1.0))  # Python float, strictly greater than p
    assert beta > float(p)
    got = SoftmaxThresholdReward(model, GOALS[0], NEGATIVES[:3], temperature=0.1, threshold=beta).from_embeddings(x)
    assert got.tolist() == [0.0]


def test_softmax_threshold_extremes(model, unit_vectors):
    tau = 0.01
    # half the rows are the goal embedding itself: p == 1.0 exactly in float32 at τ = 0.01
    goal_vec = model.encode_text([GOALS[0]])[0].numpy()
    x = np.vstack([unit_vectors(N // 2, 32, seed=13), np.repeat(goal_vec[None], N - N // 2, axis=0)])
    negatives = NEGATIVES[:3]
    dense = SoftmaxThresholdReward(model, GOALS[0], negatives, temperature=tau).from_embeddings(x)
    assert np.any(dense == 1.0) and np.any(dense < 1.0)

    zero = SoftmaxThresholdReward(model, GOALS[0], negatives, temperature=tau, threshold=0.0).from_embeddings(x)
    assert zero.dtype == np.float32
    np.testing.assert_array_equal(zero, np.ones(N, dtype=np.float32))

    one = SoftmaxThresholdReward(model, GOALS[0], negatives, temperature=tau, threshold=1.0).from_embeddings(x)
    assert one.dtype == np.float32
    np.testing.assert_array_equal(one, (dense == 1.0).astype(np.float32))
    # the rows equal to the goal are exactly those at p = 1
    np.testing.assert_array_equal(one[N // 2 :], np.ones(N - N // 2, dtype=np.float32))


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_softmax_thresholded_output_is_binary_and_matches_oracle(model, unit_vectors, threshold):
    x = unit_vectors(N, 32, seed=14)
    tau = 0.1
    p_ref = ref_softmax_probs(x, ref_text(model, GOALS[:1]), ref_text(model, NEGATIVES[:2]), tau)[:, 0]
    got = SoftmaxThresholdReward(model, GOALS[0], NEGATIVES[:2], temperature=tau, threshold=threshold).from_embeddings(x)
    assert got.dtype == np.float32 and got.shape == (N,)
    assert set(np.unique(got).tolist()) <= {0.0, 1.0}
    clear = np.abs(p_ref - threshold) > 1e-4  # away from the boundary, float32 rounding cannot flip it
    assert clear.sum() > N - 3
    np.testing.assert_array_equal(got[clear], (p_ref[clear] >= threshold).astype(np.float32))
    assert 0 < got.sum() < N  # the threshold actually splits this batch


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_softmax_bad_temperature(model, temperature):
    with pytest.raises(InvalidParameterError):
        SoftmaxThresholdReward(model, GOALS[0], NEGATIVES[:2], temperature=temperature)


@pytest.mark.parametrize("threshold", [-0.01, 1.01, 2.0, float("nan")])
def test_softmax_bad_threshold(model, threshold):
    with pytest.raises(InvalidParameterError):
        SoftmaxThresholdReward(model, GOALS[0], NEGATIVES[:2], threshold=threshold)


@pytest.mark.parametrize("negatives", [None, [], ()])
def test_softmax_no_negatives(model, negatives):
    with pytest.raises(PromptError):
        SoftmaxThresholdReward(model, GOALS[0], negatives)


@pytest.mark.parametrize(
    "goal, negatives",
    [(GOALS[0], [GOALS[0]]), (GOALS[0], [NEGATIVES[0], GOALS[0]]), (GOALS[:2], [NEGATIVES[0], GOALS[1]])],
)
def test_softmax_negative_equal_to_goal(model, goal, negatives):
    with pytest.raises(PromptError):
        SoftmaxThresholdReward(model, goal, negatives)


@pytest.mark.parametrize("negatives", [[""], [NEGATIVES[0], "  "]])
def test_softmax_empty_negative(model, negatives):
    with pytest.raises(PromptError):
        SoftmaxThresholdReward(model, GOALS[0], negatives)


def test_softmax_wrong_embedding_width(model):
    reward = SoftmaxThresholdReward(model, GOALS[0], NEGATIVES[:2])
    with pytest.raises(InvalidParameterError):
        reward.from_embeddings(np.zeros((N, 33), dtype=np.float32))


# =============================================================================================
# describe() and the text cache
# =============================================================================================
def test_describe_goal_baseline(model):
    reward = GoalBaselineReward(model, GOALS[:2], BASELINES[0], alpha=0.25)
    desc = reward.describe()
    assert json.loads(json.dumps(desc)) == desc
    assert desc["kind"] == "goal_baseline"
    assert desc["model"] == "fixed-text-test-model"
    assert desc["goal"] == GOALS[:2]
    assert desc["baseline"] == [BASELINES[0]]
    assert desc["alpha"] == 0.25
    no_baseline = GoalBaselineReward(model, GOALS[0]).describe()
    assert json.loads(json.dumps(no_baseline)) == no_baseline
    assert no_baseline["goal"] == [GOALS[0]] and no_baseline["baseline"] is None and no_baseline["alpha"] == 0.0


@pytest.mark.parametrize("threshold", [None, 0.7])
def test_describe_softmax(model, threshold):
    reward = SoftmaxThresholdReward(model, GOALS[0], NEGATIVES[:3], temperature=0.05, threshold=threshold)
    desc = reward.describe()
    assert json.loads(json.dumps(desc)) == desc
    assert desc["kind"] == "softmax_threshold"
    assert desc["model"] == "fixed-text-test-model"
    assert desc["goal"] == [GOALS[0]]
    assert desc["negatives"] == NEGATIVES[:3]
    assert desc["temperature"] == 0.05
    assert desc["threshold"] == threshold


def test_text_cache_embeds_each_prompt_once(model, unit_vectors):
    x = unit_vectors(N, 32, seed=15)
    r1 = GoalBaselineReward(model, GOALS[:2], BASELINES[0], alpha=0.5)
    r2 = SoftmaxThresholdReward(model, [GOALS[1], GOALS[0]], [BASELINES[0], NEGATIVES[0]], temperature=0.1)
    r3 = GoalBaselineReward(model, GOALS[0], BASELINES[0], alpha=1.0)
    first = r1.from_embeddings(x), r2.from_embeddings(x), r3.from_embeddings(x)
    counts = model.embedded_prompt_counts()
    assert counts == Counter({GOALS[0]: 1, GOALS[1]: 1, BASELINES[0]: 1, NEGATIVES[0]: 1})
    n_calls = len(model.calls)
    # building the same rewards again embeds nothing and gives identical rewards
    again = (
        GoalBaselineReward(model, GOALS[:2], BASELINES[0], alpha=0.5).from_embeddings(x),
        SoftmaxThresholdReward(model, [GOALS[1], GOALS[0]], [BASELINES[0], NEGATIVES[0]], temperature=0.1).from_embeddings(x),
        GoalBaselineReward(model, GOALS[0], BASELINES[0], alpha=1.0).from_embeddings(x),
    )
    assert len(model.calls) == n_calls
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # cached values are the normalised embeddings (the oracle's), in the order asked for
    cached = model.encode_text([GOALS[1], NEGATIVES[0], GOALS[1]]).numpy()
    assert len(model.calls) == n_calls
    close(cached, ref_text(model, [GOALS[1], NEGATIVES[0], GOALS[1]]))
    # a duplicated new prompt is embedded once
    model.encode_text([NEGATIVES[1], NEGATIVES[1]])
    assert model.calls[-1] == [NEGATIVES[1]]


# =============================================================================================
# integration with a real (tiny, random) transformers CLIP and real CartPole frames
# =============================================================================================
def test_goal_baseline_on_real_model(hf_clip_model, cartpole_frames):
    model = hf_clip_model
    goal, baseline = "a pole upright", "a cart"
    rewards = GoalBaselineReward(model, goal, baseline, alpha=0.5)(cartpole_frames)
    assert rewards.dtype == np.float32 and rewards.shape == (len(cartpole_frames),)
    x = model.encode_images(cartpole_frames).cpu().numpy().astype(np.float64)
    g = model.encode_text([goal]).cpu().numpy().astype(np.float64)
    b = model.encode_text([baseline]).cpu().numpy().astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=0, atol=1e-5)
    expected = ref_goal_baseline(x, g, b, 0.5)
    np.testing.assert_allclose(rewards, expected, rtol=1e-5, atol=1e-5)
    assert np.ptp(expected) > 0  # frames differ, so rewards do


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_softmax_on_real_model(hf_clip_model, cartpole_frames, threshold):
    model = hf_clip_model
    goal, negatives = "a pole upright", ["a pole falling over", "a cart"]
    tau = 0.01
    rewards = SoftmaxThresholdReward(model, goal, negatives, temperature=tau, threshold=threshold)(cartpole_frames)
    assert rewards.dtype == np.float32 and rewards.shape == (len(cartpole_frames),)
    x = model.encode_images(cartpole_frames).cpu().numpy().astype(np.float64)
    g = model.encode_text([goal]).cpu().numpy().astype(np.float64)
    n = model.encode_text(negatives).cpu().numpy().astype(np.float64)
    p = ref_softmax_probs(x, g, n, tau)[:, 0]
    if threshold is None:
        np.testing.assert_allclose(rewards, p, rtol=1e-5, atol=1e-5)
    else:
        clear = np.abs(p - threshold) > 1e-4
        np.testing.assert_array_equal(rewards[clear], (p[clear] >= threshold).astype(np.float32))


def test_custom_reward_factory_that_is_no_reward_factory_is_one_clear_error():
    """A config's factory runs code: a builtin such as os.getcwd, or one called with keyword
    arguments it does not take, is refused in one line that says configs import code."""
    from vlmreward.errors import InvalidParameterError
    from vlmreward.rewards.registry import build_reward

    with pytest.raises(InvalidParameterError, match=r"os:getcwd returned a str, not a reward .*run only configs you trust"):
        build_reward("custom", {"factory": "os:getcwd"})
    with pytest.raises(InvalidParameterError, match=r"os:getcwd\(\*\*reward.kwargs\) failed: .*run only configs you trust"):
        build_reward("custom", {"factory": "os:getcwd", "kwargs": {"command": "true"}})
    with pytest.raises(InvalidParameterError, match="is a int, not a callable"):
        build_reward("custom", {"factory": "os:EX_OK"})
