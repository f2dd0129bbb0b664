"""Labelled frame datasets on disk: one documented format, written by ``vlmreward collect``.

A dataset is a directory of three files::

    DATASET/
      frames.npy      uint8 [N, H, W, 3] RGB frames at the environment's render size (a plain
                      NumPy .npy file, memory-mapped on load, so N is bounded by disk, not RAM)
      labels.csv      one row per frame, in frame order; the columns are listed in metadata.json
      metadata.json   what the frames and columns are (below)

``labels.csv`` always has the columns

* ``frame`` (int): the row's index into ``frames.npy``, ``0 … N-1`` in order;
* ``episode`` (int), ``step`` (int): the episode and the step within it that reached the frame's
  state (1 for the first step; frames are the states *reached* by a step, as VLM-RM scores
  ``s'``); for a scripted sweep the sweep line (e.g. one cart position) and the index along it;
* ``gt_reward`` (float): the ground-truth reward of that state (``metadata["gt_reward"]`` says
  what it is for this dataset);

then the binary labels (``is_success`` and, e.g. for Humanoid, ``success_kneeling``, …; written
as ``0``/``1``) and the state variables by name (``pole_angle``, ``cart_position``,
``car_position``, ``pose``, …). Floats are written with ``repr`` precision (they round-trip).

``metadata.json`` is an object with

* ``format`` = ``"vlmreward-dataset"`` and ``format_version`` = :data:`FORMAT_VERSION`;
* ``env_id``, ``env_kwargs`` (the ``gymnasium.make`` keyword arguments), ``render``
  (``{"width", "height", "render_mode"}``, the size of every frame);
* ``policy`` (``{"kind": "random" | "scripted" | "run", …}``), ``num_frames``;
* ``columns``: ``{name: {"type": "int" | "float" | "bool" | "str", "description": …}}`` for every
  column of ``labels.csv``, in order;
* ``labels``: ``{name: {"definition": …, "detector": …, "thresholds": {…}}}`` for the binary
  label columns (the detectors and thresholds of :mod:`vlmreward.envs.success`);
* ``state_variables``: ``{name: {"unit": …, "description": …}}``;
* ``gt_reward``: ``{"definition": …}``;
* ``landscape``: ``{"x": STATE_VARIABLE, "facet": STATE_VARIABLE | null}``, the variable a
  reward landscape is drawn against (and, optionally, one panel per value of another);
* ``created``, ``vlmreward_version`` and anything else the writer wants to keep.

:func:`load_dataset` validates all of it and raises a :class:`DatasetError` (an
:class:`~vlmreward.errors.InputFileError`) with a one-sentence message for a missing file, a
corrupt or truncated file, a format version it does not read, or counts that do not match;
asking for a column the dataset lacks raises :class:`MissingLabelError`.

The package: :mod:`~vlmreward.eval.dataset.format` (the files, the errors, a loaded :class:`Dataset`),
:mod:`~vlmreward.eval.dataset.reader` and :mod:`~vlmreward.eval.dataset.writer`.
"""

from vlmreward.eval.dataset.format import (
    COLUMN_TYPES, FORMAT, FORMAT_VERSION, FRAMES_FILE, LABELS_FILE, METADATA_FILE, REQUIRED_COLUMNS, Dataset, DatasetError,
    MissingLabelError,
)
from vlmreward.eval.dataset.reader import load_dataset
from vlmreward.eval.dataset.writer import DatasetWriter, save_dataset

__all__ = [
    "FORMAT", "FORMAT_VERSION", "FRAMES_FILE", "LABELS_FILE", "METADATA_FILE", "REQUIRED_COLUMNS", "COLUMN_TYPES",
    "DatasetError", "MissingLabelError", "Dataset", "DatasetWriter", "load_dataset", "save_dataset",
]
