"""ONNX Runtime backend: the vision tower of a loaded model, exported once and run by ONNX Runtime.

:class:`ONNXModel` wraps a loaded PyTorch model of any backend (``transformers``, ``open_clip``):

* **image path**: the model's ``_embed_pixels`` (vision tower plus projection, ``float32
  [B, 3, S, S] → [B, D]``, dynamic batch axis) is exported with ``torch.onnx.export`` (the
  ``torch.export``-based exporter, which needs ``onnxscript``; the TorchScript exporter is the
  fallback) and run by an ``onnxruntime.InferenceSession``. With ``quantize="int8"`` the
  exported graph's weights are quantised to ``int8`` (``onnxruntime.quantization.quantize_dynamic``,
  per output channel, 7-bit range so that CPUs without VNNI do not saturate; activations are
  quantised on the fly). Preprocessing, batching, the
  embedding cache and normalisation are the shared ones of :class:`VisionLanguageModel`.
* **text path**: stays in PyTorch, through the wrapped model. A prompt is embedded once and then
  served from the text cache, so its speed does not matter, and not exporting the text tower
  halves the export time and keeps the tokenisers' exact behaviour.

Exports are cached on disk, keyed by the model's name, a fingerprint of its weights and the
opset (``CACHE_DIR/<name>-<key>/``, default ``~/.cache/vlmreward/onnx``, or
``$VLMREWARD_CACHE_DIR/onnx``): a second load of the same model reads the cached graph and does
not export again. A cache directory appears only once complete (written next to it, then
renamed), so an interrupted export leaves nothing half-written behind.

Agreement with PyTorch (``tests/test_onnx.py``, on rendered CartPole frames): ``float32``
embeddings have cosine similarity ≥ 0.9999 with the PyTorch ones (measured: ≥ 0.9999998);
``int8``: see :data:`INT8_MIN_COSINE`.

Needs the ``onnx`` extra: ``pip install 'vlmreward[onnx]'`` (``onnx``, ``onnxruntime``, ``onnxscript``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal, Sequence

import torch

from vlmreward._logging import attached_handler
from vlmreward.errors import BackendNotAvailableError, ExportError, InvalidParameterError
from vlmreward.models.base import VisionLanguageModel

__all__ = [
    "ONNXModel",
    "QUANTIZE_MODES",
    "DEFAULT_OPSET",
    "INT8_MIN_COSINE",
    "default_cache_dir",
    "weights_fingerprint",
    "import_onnxruntime",
]

_log = logging.getLogger(__name__)

QUANTIZE_MODES: tuple[str, ...] = ("int8",)
"""Values of ``quantize`` besides None: ``"int8"``, dynamic quantisation of the weights."""

DEFAULT_OPSET = 18
"""ONNX opset the graphs are exported with (the ``torch.export`` exporter's default)."""

INT8_MIN_COSINE = 0.999
"""Smallest cosine similarity between ``int8`` ONNX and ``float32`` PyTorch image embeddings that the
tests accept. Measured on rendered CartPole frames: ≥ 0.99994 for the tests' tiny models and
≥ 0.9998 for a random-weight ViT-B/32 (``benchmarks/RESULTS.md``); the bound leaves room for
CPUs without ``int8`` dot-product instructions, whose kernels round differently. Trained weights
have larger outliers than random ones and may lose more: check the agreement on your own frames
(``vlmreward.eval``) before training with an ``int8`` reward."""

_FORMAT_VERSION = 2  # bump when the exported graph's contract changes (2: int8 with reduce_range)
_VISION_FILE = "vision.onnx"
_INT8_FILE = "vision.int8.onnx"
_META_FILE = "meta.json"
_INPUT = "pixels"
_OUTPUT = "embeddings"
_ONNX_EXTRA = "pip install 'vlmreward[onnx]' (onnx, onnxruntime, onnxscript)"


def import_onnxruntime() -> Any:
    """``import onnxruntime``, or a clear error naming the extra to install.

    Raises:
        BackendNotAvailableError: onnxruntime (or onnx) is not installed.
    """
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as err:
        raise BackendNotAvailableError(
            f"runtime='onnx' needs ONNX Runtime, which is not installed ({err}); {_ONNX_EXTRA}, "
            "or use runtime='torch'."
        ) from err
    return onnxruntime


def default_cache_dir() -> Path:
    """Where exports are cached: ``$VLMREWARD_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/vlmreward/onnx``
    (``~/.cache/vlmreward/onnx``)."""
    from vlmreward._paths import cache_root

    return cache_root() / "onnx"


@torch.no_grad()
def weights_fingerprint(module: torch.nn.Module, sample: int = 1024) -> str:
    """Hex digest (32 characters) of a network's weights: names, shapes, dtypes, sums and samples.

    Per tensor: its name, shape and dtype, the ``float64`` sum and sum of absolute values, and up
    to ``sample`` values spread evenly over it. Two checkpoints of one architecture (a fine-tune
    changes every weight) get different fingerprints; computing it reads each weight twice, on the
    weights' device.
    """
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        if flat.numel() == 0:
            continue
        if not flat.is_floating_point():
            flat = flat.double()  # integer buffers (position ids): small
        total = flat.sum(dtype=torch.float64)
        absolute = torch.linalg.vector_norm(flat, ord=1, dtype=torch.float64)  # no full-size copy
        stride = max(1, flat.numel() // sample)
        digest.update(torch.stack([total, absolute]).cpu().numpy().tobytes())
        digest.update(flat[::stride][:sample].double().cpu().numpy().tobytes())
    return digest.hexdigest()


class _VisionTower(torch.nn.Module):
    """``source._embed_pixels`` as a module, so the exporter sees the weights as parameters."""

    def __init__(self, source: VisionLanguageModel) -> None:
        super().__init__()
        network = getattr(source, "model", None)
        if isinstance(network, torch.nn.Module):
            self.network = network
        self._embed = source._embed_pixels

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._embed(pixels)


class ONNXModel(VisionLanguageModel):
    """A loaded model whose image embeddings are computed by ONNX Runtime.

    Create one with ``vlmreward.load_model(name, runtime="onnx", quantize=None | "int8")``, or wrap
    a model already loaded: ``ONNXModel(model)``. It behaves as the wrapped model
    (``encode_images``, ``encode_text``, rewards) with the vision tower run by ONNX Runtime.

    Args:
        source: a loaded :class:`VisionLanguageModel` with ``float32`` weights (not itself an
            :class:`ONNXModel`). It is kept: its text tower embeds the prompts.
        quantize: None (``float32`` graph) or ``"int8"`` (weights quantised per output channel,
            activations dynamically; faster on CPUs with ``int8`` dot-product instructions).
        cache_dir: where exports are cached (default :func:`default_cache_dir`).
        opset: ONNX opset of the export.
        providers: ONNX Runtime execution providers, in order of preference (default:
            ``CUDAExecutionProvider`` then CPU when the model is on CUDA and that provider is
            installed, else ``CPUExecutionProvider``).
        num_threads: ONNX Runtime's intra-op threads (default: ``torch.get_num_threads()``, the
            threads PyTorch uses, so both backends compare on equal terms).
        exporter: ``"dynamo"`` (``torch.export``-based, needs ``onnxscript``), ``"torchscript"``
            (the legacy tracer) or ``"auto"`` (dynamo, falling back to torchscript).

    Attributes:
        source: the wrapped PyTorch model.
        model: the wrapped model's network (for parameter counts and fingerprints).
        quantize: as given.
        export_dir: this model's directory in the export cache.
        onnx_path: the graph the session runs.
        exported: whether this load wrote to the export cache (ran the exporter or the
            quantiser); False when the cached graph was reused.
        session: the ``onnxruntime.InferenceSession``.

    Raises:
        BackendNotAvailableError: onnxruntime (or onnx, or onnxscript for ``exporter="dynamo"``)
            is not installed.
        InvalidParameterError: an unknown ``quantize``, ``exporter`` or provider, weights not
            ``float32``, or ``source`` already an :class:`ONNXModel`.
        ExportError: the model's vision tower could not be exported.

    The session's inputs and outputs pass through host memory (``numpy``), also with the CUDA
    provider; embeddings are returned on the wrapped model's device.
    """

    runtime = "onnx"

    def __init__(
        self,
        source: VisionLanguageModel,
        *,
        quantize: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        opset: int = DEFAULT_OPSET,
        providers: Sequence[str] | None = None,
        num_threads: int | None = None,
        exporter: Literal["auto", "dynamo", "torchscript"] = "auto",
    ) -> None:
        if isinstance(source, ONNXModel):
            raise InvalidParameterError("the model already runs on ONNX Runtime; wrap its .source instead.")
        if quantize is not None and quantize not in QUANTIZE_MODES:
            raise InvalidParameterError(
                f"quantize={quantize!r}: use None (float32) or one of {', '.join(map(repr, QUANTIZE_MODES))}."
            )
        if exporter not in ("auto", "dynamo", "torchscript"):
            raise InvalidParameterError(f"exporter={exporter!r}: use 'auto', 'dynamo' or 'torchscript'.")
        if source.dtype != torch.float32:
            raise InvalidParameterError(
                f"runtime='onnx' exports float32 weights, but the model was loaded with dtype "
                f"{str(source.dtype).removeprefix('torch.')}; load it without dtype (or dtype='float32'), "
                "and use quantize='int8' to make it smaller and faster."
            )
        ort = import_onnxruntime()
        super().__init__(
            name=source.name,
            embed_dim=source.embed_dim,
            context_length=source.context_length,
            preprocess_config=source.preprocess_config,
            device=source.device,
            dtype=torch.float32,
            truncate=source.truncate,
            batch_size=source.batch_size,
        )
        self.source = source
        self.model = getattr(source, "model", None)
        self.quantize = quantize
        self.backend = source.backend  # the library that loaded it; runtime says what runs it
        if quantize is not None:
            self.runtime = f"onnx-{quantize}"
        self.opset = int(opset)
        self._exporter = exporter
        self.exported = False
        self.providers = list(providers) if providers is not None else self._default_providers(ort)
        unknown = [p for p in self.providers if p not in ort.get_available_providers()]
        if unknown:
            raise InvalidParameterError(
                f"ONNX Runtime execution provider(s) {unknown} are not available here; available: "
                f"{', '.join(ort.get_available_providers())}."
            )
        self.export_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.export_dir = self.export_dir / self._cache_key()
        fp32_path = self._ensure_exported()
        self.onnx_path = self._ensure_quantized(fp32_path) if quantize else fp32_path
        self.num_threads = int(num_threads) if num_threads is not None else torch.get_num_threads()
        self.session = self._open_session(ort)

    # ------------------------------------------------------------------ backend hooks
    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        array = pixels.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        (out,) = self.session.run([_OUTPUT], {_INPUT: array})
        return torch.from_numpy(out).to(self.device)

    def _embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        return self.source._embed_prompts(prompts)

    def count_tokens(self, prompt: str) -> int:
        return self.source.count_tokens(prompt)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", quantize={self.quantize!r}, providers={self.providers})"

    # ------------------------------------------------------------------ export and cache
    def _cache_key(self) -> str:
        network = getattr(self.source, "model", None)
        if not isinstance(network, torch.nn.Module):
            raise InvalidParameterError(
                f"{type(self.source).__name__} has no torch network (.model) to export to ONNX."
            )
        cfg = self.preprocess_config
        identity = {
            "format": _FORMAT_VERSION,
            "name": self.source.name,
            "class": type(self.source).__name__,
            "weights": weights_fingerprint(network),
            "opset": self.opset,
            "image_size": cfg.image_size,
            "embed_dim": self.embed_dim,
        }
        self._identity = identity
        key = hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(), digest_size=8).hexdigest()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(self.source.name)).name or "model").strip("._")[:48]
        return f"{slug or 'model'}-{key}"

    def _ensure_exported(self) -> Path:
        path = self.export_dir / _VISION_FILE
        if path.is_file() and (self.export_dir / _META_FILE).is_file():
            return path
        self.export_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.export_dir.parent, prefix=f".{self.export_dir.name}.tmp-"))
        try:
            exporter = self._export(staging / _VISION_FILE)
            meta = {**self._identity, "exporter": exporter, "torch": torch.__version__, "quantized": []}
            (staging / _META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            try:
                os.replace(staging, self.export_dir)
            except OSError:  # another process finished the same export first: use theirs
                if not path.is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.exported = True
        return path

    def _export(self, path: Path) -> str:
        """Export ``_embed_pixels`` to ``path``; returns the exporter used."""
        tower = _VisionTower(self.source).eval()
        size = self.image_size
        example = torch.zeros(2, 3, size, size, dtype=torch.float32, device=self.source.device)
        errors: list[str] = []
        order = ["dynamo", "torchscript"] if self._exporter == "auto" else [self._exporter]
        for exporter in order:
            if exporter == "dynamo":
                try:
                    import onnxscript  # noqa: F401
                except ImportError as err:
                    if self._exporter == "dynamo":
                        raise BackendNotAvailableError(
                            f"exporter='dynamo' needs onnxscript ({err}); {_ONNX_EXTRA}."
                        ) from err
                    errors.append(f"dynamo: {err}")
                    continue
            try:
                # Gradients stay enabled for the tracer: under no_grad, torch.nn.MultiheadAttention
                # (open_clip) takes its fused fast path, which has no ONNX export.
                grad = torch.no_grad() if exporter == "dynamo" else contextlib.nullcontext()
                with torch.inference_mode(False), grad, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if exporter == "dynamo":
                        batch = torch.export.Dim("batch", min=1, max=1 << 16)
                        torch.onnx.export(
                            tower, (example,), str(path), input_names=[_INPUT], output_names=[_OUTPUT],
                            opset_version=self.opset, dynamo=True, dynamic_shapes=({0: batch},),
                            external_data=True, verbose=False,
                        )
                    else:
                        torch.onnx.export(
                            tower, (example,), str(path), input_names=[_INPUT], output_names=[_OUTPUT],
                            opset_version=self.opset, dynamo=False,
                            dynamic_axes={_INPUT: {0: "batch"}, _OUTPUT: {0: "batch"}},
                        )
                return exporter
            except Exception as err:  # noqa: BLE001 - reported below with every exporter's reason
                errors.append(f"{exporter}: {type(err).__name__}: {' '.join(str(err).split())[:300]}")
                for leftover in path.parent.iterdir():
                    leftover.unlink()
        raise ExportError(
            f"could not export the vision tower of {self.source.name!r} to ONNX ({'; '.join(errors)}); "
            "use runtime='torch'."
        )

    def _ensure_quantized(self, fp32_path: Path) -> Path:
        path = self.export_dir / _INT8_FILE
        if path.is_file():
            return path
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

        staging = Path(tempfile.mkdtemp(dir=self.export_dir, prefix=".int8.tmp-"))
        try:
            large = sum(f.stat().st_size for f in self.export_dir.glob(f"{_VISION_FILE}*")) > (1 << 31)
            prepared = staging / "prepared.onnx"
            # ONNX Runtime's recommended preparation: symbolic shape inference and graph
            # clean-up, which also repairs intermediate shapes the exporter's optimiser leaves stale.
            with _root_logging_silenced(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(fp32_path, prepared, save_as_external_data=large)
                # reduce_range: 7-bit weights. Without VNNI, x86 int8 kernels multiply with AVX2's
                # vpmaddubsw, whose int16 sums saturate on full-range weights (ONNX Runtime's
                # quantisation guide): on such a CPU (AMD EPYC, Zen 2) the tiny CLIP's int8
                # embeddings fell to cosine 0.989 with full range, 0.99977 with reduce_range.
                quantize_dynamic(
                    prepared, staging / _INT8_FILE, weight_type=QuantType.QInt8, per_channel=True,
                    reduce_range=True, use_external_data_format=large,
                )
            for item in sorted(staging.iterdir(), key=lambda p: p.name == _INT8_FILE):  # data first, graph last
                if item.name.startswith(_INT8_FILE):
                    os.replace(item, self.export_dir / item.name)
        except Exception as err:  # noqa: BLE001
            raise ExportError(
                f"could not quantise the ONNX graph of {self.source.name!r} to int8 "
                f"({type(err).__name__}: {' '.join(str(err).split())[:300]}); use quantize=None."
            ) from err
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.exported = True
        return path

    def _default_providers(self, ort: Any) -> list[str]:
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def _open_session(self, ort: Any) -> Any:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.num_threads
        options.log_severity_level = 3  # errors only
        try:
            return ort.InferenceSession(str(self.onnx_path), options, providers=self.providers)
        except Exception as err:  # noqa: BLE001 - a damaged cache entry: export again, once
            if self.exported:
                raise ExportError(f"ONNX Runtime cannot load the graph exported for {self.source.name!r}: {err}") from err
            _log.warning("the cached ONNX export %s cannot be loaded (%s); exporting again", self.export_dir, err)
            shutil.rmtree(self.export_dir, ignore_errors=True)
            fp32_path = self._ensure_exported()
            self.onnx_path = self._ensure_quantized(fp32_path) if self.quantize else fp32_path
            return ort.InferenceSession(str(self.onnx_path), options, providers=self.providers)


def _root_logging_silenced() -> contextlib.AbstractContextManager[None]:
    """Keep ``onnxruntime.quantization``'s ``logging.warning`` calls quiet, without configuring logging.

    They log through the root logger, whose module-level helpers would install a stderr handler
    (``logging.basicConfig``) when it has none; a temporary ``NullHandler`` and level prevent both.
    """
    return attached_handler(logging.getLogger(), logging.NullHandler(), logging.ERROR)
