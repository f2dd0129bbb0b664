"""Preference labels for pairs of frames: from a local generative VLM (RL-VLM-F's query) or from the ground truth.

RL-VLM-F (Wang et al., ICML 2024; ``yufeiwang63/RL-VLM-F``, ``prompt.py`` and ``reward_model.py``
``get_label``) shows a VLM two images and the goal and reads a label: ``0`` (the goal is better
achieved in the first), ``1`` (the second) or ``-1`` (no preference; such pairs are not trained on).
Labels here have the same values (:data:`FIRST`, :data:`SECOND`, :data:`NO_PREFERENCE`).

:class:`VLMPreferenceLabeller` asks a :class:`~vlmreward.models.generative.GenerativeVLM` in one
stage (the images and the question, then the label) or two (RL-VLM-F's ``gemini_free_form``: first
a free-form comparison is generated, then a text-only summary question with that analysis asks for
the label). The label is read, not generated: from one forward pass, the log-probabilities of the
answers ``"1"`` (Image 1) and ``"2"`` (Image 2) as the next token
(:func:`~vlmreward.models.generative_images.interleaved_answer_log_probs`). Every pair is asked in
both orders; with ``s(a, b) = log p("1") − log p("2")`` when ``a`` is shown first,

    Δ = (s(a, b) − s(b, a)) / 2        (> 0: ``a`` is preferred),
    bias = (s(a, b) + s(b, a)) / 2     (> 0: whichever is shown first is preferred),

and the label is :data:`FIRST` when ``Δ > margin``, :data:`SECOND` when ``Δ < −margin``, else
:data:`NO_PREFERENCE`. The mean ``bias`` is the residual position bias averaging removes.

:class:`LabelCache` keeps the two log-probabilities of every asked (ordered) query on disk, keyed
by the SHA-256 of the frames' bytes, the prompts and the model's fingerprint, so a rerun or a
resumed run never asks the model twice.

:class:`OracleLabeller` labels from ground-truth values (RL-VLM-F's ``rational_labels`` from the
environment reward, PEBBLE's scripted teacher with an equality threshold).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vlmreward.errors import InvalidParameterError
from vlmreward.models.generative import GenerativeVLM
from vlmreward.models.generative_images import check_interleaved, interleaved_answer_log_probs
from vlmreward.models.generative_video import generate_after_frames

__all__ = [
    "FIRST", "SECOND", "NO_PREFERENCE", "PreferenceLabels", "labels_from_delta", "label_accuracy", "LabelCache", "model_fingerprint",
    "VLMPreferenceLabeller", "ServedLabeller", "OracleLabeller", "IMAGE_1", "IMAGE_2", "LABEL_QUESTION", "ANALYSIS_QUESTION", "SUMMARY_QUESTION",
]

FIRST, SECOND, NO_PREFERENCE = 0, 1, -1
"""Label values (RL-VLM-F's): the first frame of the pair is preferred, the second, neither."""

IMAGE_1 = "Consider the following two images:\nImage 1:\n"
IMAGE_2 = "\nImage 2:\n"
"""RL-VLM-F's ``gemini_free_query_prompt1`` and ``gemini_free_query_prompt2``, before each image."""
LABEL_QUESTION = (
    "\nThe goal is {goal}. Is the goal better achieved in Image 1 or Image 2?\n"
    "Reply a single line of 1 if the goal is better achieved in Image 1, or 2 if it is better achieved in Image 2."
)
"""One-stage question (RL-VLM-F's ``gemini_single_query_no_analysis_prompt_template`` with the answers
"1"/"2" instead of "0"/"1"/"-1": "no preference" comes from the margin, not from an answer)."""
ANALYSIS_QUESTION = (
    "\n1. What is shown in Image 1?\n2. What is shown in Image 2?\n3. The goal is {goal}. Is there any difference between "
    "Image 1 and Image 2 in terms of achieving the goal?\n"
)
"""Stage one of two (RL-VLM-F's ``gemini_free_query_template``)."""
SUMMARY_QUESTION = (
    "Based on the text below to the questions:\n1. What is shown in Image 1?\n2. What is shown in Image 2?\n3. The goal is "
    "{goal}. Is there any difference between Image 1 and Image 2 in terms of achieving the goal?\n{analysis}\n\n"
    "Is the goal better achieved in Image 1 or Image 2?\n"
    "Reply a single line of 1 if the goal is better achieved in Image 1, or 2 if it is better achieved in Image 2."
)
"""Stage two, text only (RL-VLM-F's ``gemini_summary_template``, answers "1"/"2" as above)."""


@dataclass
class PreferenceLabels:
    """Labels of ``N`` pairs.

    Attributes:
        labels: ``int8 [N]``: :data:`FIRST`, :data:`SECOND` or :data:`NO_PREFERENCE`.
        delta: ``float32 [N]``: the order-averaged log-odds that the first is preferred (oracle: the truth difference).
        first_bias: ``float32 [N]``: the preference for whichever is shown first (0 for the oracle).
    """

    labels: np.ndarray
    delta: np.ndarray
    first_bias: np.ndarray


def labels_from_delta(delta: np.ndarray, margin: float) -> np.ndarray:
    """``int8 [N]``: :data:`FIRST` where ``delta > margin``, :data:`SECOND` where ``delta < −margin``, else :data:`NO_PREFERENCE`."""
    delta = np.asarray(delta, dtype=np.float64)
    out = np.full(delta.shape, NO_PREFERENCE, dtype=np.int8)
    out[delta > margin] = FIRST
    out[delta < -margin] = SECOND
    return out


def label_accuracy(labels: np.ndarray, truth_delta: np.ndarray) -> float | None:
    """Share of pairs whose label agrees with the sign of the ground-truth difference ``truth_a − truth_b``, among
    pairs where both have a preference and the truth is finite (RL-VLM-F's "vlm label acc" against
    ``rational_labels``); None when there is no such pair."""
    labels, delta = np.asarray(labels), np.asarray(truth_delta, dtype=np.float64)
    truth = np.where(delta > 0, FIRST, np.where(delta < 0, SECOND, NO_PREFERENCE))
    both = (labels != NO_PREFERENCE) & (truth != NO_PREFERENCE) & np.isfinite(delta)
    return float((labels[both] == truth[both]).mean()) if both.any() else None


def model_fingerprint(model: GenerativeVLM) -> str:
    """A short digest of a generative VLM: its name, type, dtype, parameter count and the bytes of its first and last
    parameter tensors (a model with other weights under the same name gets another fingerprint)."""
    params = list(model.model.parameters())
    digest = hashlib.sha256(f"{model.name}|{model.model_type}|{model.dtype}|{sum(p.numel() for p in params)}".encode())
    for p in (params[0], params[-1]):
        digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


class LabelCache:
    """Log-probabilities of asked queries, on disk: one JSON line ``{"key": ..., "value": [lp1, lp2]}`` per query.

    Lines are appended and flushed (``os.fsync``) as they are asked, so a run killed at any moment
    keeps every answer it paid for; a torn last line (killed mid-write) is ignored when read.

    Args:
        path: the ``.jsonl`` file (created with its directory).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._values: dict[str, list[float]] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                    self._values[str(item["key"])] = [float(v) for v in item["value"]]
                except (ValueError, KeyError, TypeError):
                    continue  # a torn line from a killed write

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: str) -> list[float] | None:
        return self._values.get(key)

    def put(self, items: dict[str, list[float]]) -> None:
        """Add ``items`` (key → log-probabilities) and append them to the file."""
        new = {k: v for k, v in items.items() if k not in self._values}
        if not new:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            for key, value in new.items():
                f.write(json.dumps({"key": key, "value": value}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._values.update(new)


def _frame_digest(frame: np.ndarray) -> bytes:
    frame = np.ascontiguousarray(frame)
    return hashlib.sha256(f"{frame.shape}|{frame.dtype}|".encode() + frame.tobytes()).digest()


class VLMPreferenceLabeller:
    """Labels pairs of frames with a local generative VLM (module docstring).

    Args:
        model: a generative VLM with a chat template (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, SmolVLM).
        goal: the goal, as it completes "The goal is {goal}." (RL-VLM-F: "to balance the brown pole on the black cart to be upright").
        stages: 1 (images and question, then the label) or 2 (generated comparison, then a text-only label question).
        margin: ``|Δ| ≤ margin`` is :data:`NO_PREFERENCE` (nats).
        cache: a :class:`LabelCache`, or None.
        max_new_tokens: tokens generated in stage one.
        batch_size: queries per forward pass (default the model's).

    Attributes:
        model_calls: ordered queries sent to the model so far (both orders count; cache hits do not).
        cache_hits: ordered queries answered by the cache.

    Raises:
        InvalidParameterError: not a generative VLM with a chat template, ``stages`` not 1 or 2, a
            negative margin, or a tokenizer without single-token "1" and "2".
    """

    def __init__(self, model: Any, goal: str, stages: int = 1, margin: float = 0.0, cache: LabelCache | None = None,
                 max_new_tokens: int = 128, batch_size: int | None = None) -> None:
        self.model = check_interleaved(model, "preference")
        if stages not in (1, 2):
            raise InvalidParameterError(f"stages={stages}: use 1 (label only) or 2 (comparison, then label).")
        if margin < 0:
            raise InvalidParameterError(f"margin must be ≥ 0; got {margin}.")
        self.goal, self.stages, self.margin, self.cache = goal, int(stages), float(margin), cache
        self.max_new_tokens, self.batch_size = int(max_new_tokens), batch_size
        self.answer_ids = [self.model.answer_token_ids(("1",)), self.model.answer_token_ids(("2",))]
        self.fingerprint = model_fingerprint(self.model)
        self.model_name = self.model.name
        self.model_calls = 0
        self.cache_hits = 0

    def _key(self, first: np.ndarray, second: np.ndarray) -> str:
        digest = hashlib.sha256()
        digest.update(f"v1|{self.fingerprint}|{self.stages}|{self.max_new_tokens}|{self.goal}|{LABEL_QUESTION}|".encode())
        digest.update(_frame_digest(first))
        digest.update(_frame_digest(second))
        return digest.hexdigest()

    def _ask(self, queries: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """``float32 [Q, 2]``: ``log p("1"), log p("2")`` of each ordered query, asked now."""
        if self.stages == 1:
            contents = [[IMAGE_1, a, IMAGE_2, b, LABEL_QUESTION.format(goal=self.goal)] for a, b in queries]
        else:
            analyses = [generate_after_frames(self.model, [IMAGE_1, a, IMAGE_2, b, ANALYSIS_QUESTION.format(goal=self.goal)],
                                              self.max_new_tokens) for a, b in queries]
            contents = [[SUMMARY_QUESTION.format(goal=self.goal, analysis=text)] for text in analyses]
        self.model_calls += len(queries)
        return interleaved_answer_log_probs(self.model, contents, self.answer_ids, self.batch_size).numpy()

    def ordered_log_probs(self, first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> np.ndarray:
        """``float32 [N, 2]``: ``log p("1"), log p("2")`` with ``first[i]`` shown as Image 1, from the cache where it has them."""
        keys = [self._key(a, b) for a, b in zip(first, second)]
        out = np.zeros((len(keys), 2), dtype=np.float32)
        missing = []
        for i, key in enumerate(keys):
            value = self.cache.get(key) if self.cache is not None else None
            if value is None:
                missing.append(i)
            else:
                out[i] = value
        self.cache_hits += len(keys) - len(missing)
        if missing:
            asked = self._ask([(first[i], second[i]) for i in missing])
            out[missing] = asked
            if self.cache is not None:
                self.cache.put({keys[i]: [float(v) for v in row] for i, row in zip(missing, asked)})
        return out

    def label(self, a: np.ndarray, b: np.ndarray, truth_a: np.ndarray | None = None, truth_b: np.ndarray | None = None
              ) -> PreferenceLabels:
        """Label ``N`` pairs ``(a[i], b[i])`` of uint8 frames ``[N, H, W, 3]``, each asked in both orders.

        ``truth_a``/``truth_b`` are accepted for the labellers' common signature and not read.
        """
        n = len(a)
        lp = self.ordered_log_probs([*a, *b], [*b, *a])  # rows 0..n-1: a first; n..2n-1: b first
        s_ab = lp[:n, 0] - lp[:n, 1]
        s_ba = lp[n:, 0] - lp[n:, 1]
        delta = (s_ab - s_ba) / 2
        return PreferenceLabels(labels_from_delta(delta, self.margin), delta.astype(np.float32), ((s_ab + s_ba) / 2).astype(np.float32))

    def describe(self) -> dict[str, Any]:
        return {"labeller": "vlm", "model": self.model_name, "fingerprint": self.fingerprint, "stages": self.stages,
                "margin": self.margin, "goal": self.goal, "cache": None if self.cache is None else str(self.cache.path)}


class ServedLabeller(VLMPreferenceLabeller):
    """:class:`VLMPreferenceLabeller` whose model is on a reward server: the queries not in the cache
    are sent to ``ask``; the cache, both orders of each pair and the margin are handled here as for
    a local model, so the labels are the local labeller's (up to the server's batch composition).

    Args:
        ask: ``ask(first [Q, H, W, 3], second [Q, H, W, 3]) -> float32 [Q, 2]`` (the server's
            :meth:`~vlmreward.rewards.preference.PreferenceReward.ask`).
        served: the server's reward description: ``model`` and ``fingerprint`` (its labeller's).
        goal, stages, margin, cache, max_new_tokens: as :class:`VLMPreferenceLabeller`; the
            server's labeller must have the same (they are part of each cached answer's key).
    """

    def __init__(self, ask: Any, served: dict[str, Any], goal: str, stages: int = 1, margin: float = 0.0,
                 cache: LabelCache | None = None, max_new_tokens: int = 128) -> None:
        if margin < 0:
            raise InvalidParameterError(f"margin must be ≥ 0; got {margin}.")
        self.remote_ask, self.model_name, self.model = ask, str(served.get("model")), None
        self.goal, self.stages, self.margin, self.cache = goal, int(stages), float(margin), cache
        self.max_new_tokens, self.batch_size = int(max_new_tokens), None
        self.fingerprint = str(served.get("fingerprint"))
        self.model_calls = 0
        self.cache_hits = 0

    def _ask(self, queries: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        self.model_calls += len(queries)
        first, second = np.stack([a for a, _ in queries]), np.stack([b for _, b in queries])
        return np.asarray(self.remote_ask(first, second), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "served": True}


class OracleLabeller:
    """Labels pairs by ground-truth values: :data:`FIRST` when ``truth_a − truth_b > margin``, :data:`SECOND` when
    ``< −margin``, else :data:`NO_PREFERENCE` (RL-VLM-F's ``rational_labels`` with ``teacher_thres_equal``)."""

    def __init__(self, margin: float = 0.0) -> None:
        if margin < 0:
            raise InvalidParameterError(f"margin must be ≥ 0; got {margin}.")
        self.margin = float(margin)
        self.model_calls = 0
        self.cache_hits = 0

    def label(self, a: np.ndarray, b: np.ndarray, truth_a: np.ndarray | None = None, truth_b: np.ndarray | None = None
              ) -> PreferenceLabels:
        if truth_a is None or truth_b is None:
            raise InvalidParameterError("the oracle labeller needs the ground-truth value of every frame (truth_key).")
        delta = np.asarray(truth_a, dtype=np.float64) - np.asarray(truth_b, dtype=np.float64)
        return PreferenceLabels(labels_from_delta(delta, self.margin), delta.astype(np.float32), np.zeros(len(delta), np.float32))

    def describe(self) -> dict[str, Any]:
        return {"labeller": "oracle", "margin": self.margin}
