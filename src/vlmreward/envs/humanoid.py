"""Humanoid with a textured scene and a front camera (VLM-RM's Humanoid set-up).

:class:`TexturedHumanoidEnv` is gymnasium's ``Humanoid-v5`` (same dynamics, observation and
reward) on a modified copy of gymnasium's own ``humanoid.xml``: a blue gradient sky box, a tiled
stone floor, skin-coloured limbs, and a camera that tracks the body's centre of mass from 3 m
in front of it (three-quarter front view, 30° off the body's forward axis), slightly above,
looking at it. The episode never terminates early
(``terminate_when_unhealthy=False``); ``gymnasium.make("vlmreward/HumanoidTextured-v0")`` ends it
by truncation after ``max_episode_steps`` (default 200, the VLM-RM reference config).

Rendering is tuned for throughput by default: no shadows (``<quality shadowsize="0">``, lights
with ``castshadow="false"``), no multisampling (``offsamples="0"``), no floor reflection; this
takes MuJoCo from ≈ 15 to ≈ 100–200 frames/s at 224 × 224 on EGL. ``high_quality_render=True``
restores MuJoCo's defaults (4096² shadow map, 4× multisampling, shadows, a slightly reflective
floor).

The XML is read from the installed gymnasium at run time, edited with ``xml.etree`` and written
to ``<tempdir>/vlmreward-mujoco/`` under a name derived from its content (so concurrent processes
write identical files). MuJoCo is imported when this module is imported; ``vlmreward.envs`` only
names it by entry point string, so MuJoCo stays optional.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import tempfile
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from vlmreward._paths import atomic_write_bytes
from vlmreward.errors import InvalidParameterError, VLMRewardError


class RenderBackendError(VLMRewardError, RuntimeError):
    """MuJoCo could not open (or even load) an OpenGL backend for off-screen rendering."""


def _backend_message(exc: BaseException) -> str:
    backend = os.environ.get("MUJOCO_GL")
    return (
        f"MuJoCo could not set up OpenGL rendering (MUJOCO_GL={backend!r}: {type(exc).__name__}: {exc}); "
        "set MUJOCO_GL=egl (GPU, EGL drivers) or MUJOCO_GL=osmesa (CPU, needs the OSMesa library, e.g. "
        "`apt-get install libosmesa6`) before mujoco is imported."
    )


if importlib.util.find_spec("mujoco") is None:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the Humanoid environment needs MuJoCo: install it with `pip install 'gymnasium[mujoco]>=1.0'` "
        "(the vlmreward 'mujoco' extra)."
    )
try:
    import mujoco  # noqa: F401  (its import loads the MUJOCO_GL backend's OpenGL library)
except Exception as exc:  # pragma: no cover - depends on the machine's GL libraries
    raise RenderBackendError(_backend_message(exc)) from exc
from gymnasium import utils  # noqa: E402
from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv  # noqa: E402

from vlmreward.envs.success import HUMANOID_POSES

__all__ = [
    "TexturedHumanoidEnv",
    "RenderBackendError",
    "textured_humanoid_xml",
    "write_textured_humanoid_xml",
    "CAMERA_NAME",
    "write_model_xml",
    "ExplainedRenderFailure",
    "TaskSuccess",
    "task_detector",
]

CAMERA_NAME = "front"
"""Name of the added camera: ``mode="trackcom"`` (follows the centre of mass, fixed orientation)."""
CAMERA_DISTANCE = 3.0
"""Horizontal distance (m) from the camera to the torso in the initial pose."""
CAMERA_AZIMUTH_DEG = 30.0
"""Angle (degrees) around the vertical between the body's forward axis (``+x``) and the camera:
a three-quarter front view, so that poses that extend towards the camera (kneeling shins, front
splits) stay visible; 0 would be straight in front."""
CAMERA_HEIGHT_ABOVE_TORSO = 0.25
"""Camera height (m) above the torso's initial height (1.4 m), i.e. 1.65 m above the floor."""
CAMERA_PITCH_DEG = 12.0
"""Downward pitch (degrees). With MuJoCo's 45° vertical field of view a standing body (1.7 m)
with both arms raised (hands at 1.93 m) fits with margin, and the top quarter of the frame is sky."""

SKY_TOP_RGB = "0.30 0.52 0.86"
SKY_HORIZON_RGB = "1 1 1"
FLOOR_RGB1, FLOOR_RGB2, FLOOR_GROUT = "0.62 0.58 0.52", "0.74 0.71 0.66", "0.36 0.34 0.31"
SKIN_RGBA = "0.93 0.74 0.62 1"
"""Light skin tone for every body geom (gymnasium's default: tan ``0.8 0.6 0.4`` with white crosses)."""


def _gymnasium_humanoid_xml() -> str:
    """Text of gymnasium's ``envs/mujoco/assets/humanoid.xml`` (the ``Humanoid-v5`` model)."""
    return resources.files("gymnasium.envs.mujoco").joinpath("assets", "humanoid.xml").read_text(encoding="utf-8")


def _child(parent: ET.Element, tag: str) -> ET.Element:
    found = parent.find(tag)
    return found if found is not None else ET.SubElement(parent, tag)


def textured_humanoid_xml(high_quality_render: bool = False, width: int = 224, height: int = 224) -> str:
    """gymnasium's humanoid MJCF with VLM-RM's textured scene and the front camera, as a string.

    Args:
        high_quality_render: shadows (4096² map) and 4× multisampling if True; none if False.
        width, height: off-screen framebuffer size to declare (pixels).
    """
    root = ET.fromstring(_gymnasium_humanoid_xml())

    visual = _child(root, "visual")
    quality = _child(visual, "quality")
    quality.set("shadowsize", "4096" if high_quality_render else "0")
    quality.set("offsamples", "4" if high_quality_render else "0")
    global_ = _child(visual, "global")
    global_.set("offwidth", str(int(width)))
    global_.set("offheight", str(int(height)))
    headlight = _child(visual, "headlight")
    headlight.set("ambient", "0.35 0.35 0.35")
    headlight.set("diffuse", "0.45 0.45 0.45")
    headlight.set("specular", "0.1 0.1 0.1")

    asset = _child(root, "asset")
    for texture in list(asset.findall("texture")):
        if texture.get("type") == "skybox" or texture.get("name") in ("texplane", "texgeom"):
            asset.remove(texture)
    for material in list(asset.findall("material")):
        if material.get("name") in ("MatPlane", "geom"):
            asset.remove(material)
    ET.SubElement(
        asset, "texture",
        type="skybox", builtin="gradient", rgb1=SKY_TOP_RGB, rgb2=SKY_HORIZON_RGB, width="512", height="512",
    )
    ET.SubElement(
        asset, "texture",
        name="texplane", type="2d", builtin="checker", rgb1=FLOOR_RGB1, rgb2=FLOOR_RGB2,
        mark="edge", markrgb=FLOOR_GROUT, random="0.04", width="512", height="512",
    )
    ET.SubElement(
        asset, "material",
        name="MatPlane", texture="texplane", texrepeat="50 50", texuniform="false",
        reflectance="0.15" if high_quality_render else "0", shininess="0.1", specular="0.1",
    )
    ET.SubElement(asset, "material", name="geom", rgba=SKIN_RGBA, specular="0.25", shininess="0.3")

    default_geom = root.find("default/geom")
    if default_geom is not None:
        default_geom.set("rgba", SKIN_RGBA)

    worldbody = _child(root, "worldbody")
    for light in worldbody.iter("light"):
        light.set("castshadow", "true" if high_quality_render else "false")
        light.set("diffuse", "0.75 0.75 0.72")
    floor = worldbody.find("geom[@name='floor']")
    if floor is not None:
        floor.set("rgba", "1 1 1 1")
        floor.set("size", "50 50 0.125")  # visual extent only (a plane collides everywhere)

    torso = worldbody.find("body[@name='torso']")
    if torso is None:  # pragma: no cover - gymnasium's model has it
        raise InvalidParameterError("gymnasium's humanoid.xml has no 'torso' body; reinstall gymnasium>=1.0.")
    pitch, azimuth = math.radians(CAMERA_PITCH_DEG), math.radians(CAMERA_AZIMUTH_DEG)
    ca, sa, cp, sp = math.cos(azimuth), math.sin(azimuth), math.cos(pitch), math.sin(pitch)
    # Camera frame: x = image right (horizontal), y = image up; it looks along -z = the direction
    # from the camera to the torso, tilted down by the pitch.
    x_axis = (-sa, ca, 0.0)
    y_axis = (-ca * sp, -sa * sp, cp)
    camera = ET.Element(
        "camera",
        name=CAMERA_NAME,
        mode="trackcom",
        pos=f"{CAMERA_DISTANCE * ca:.6f} {CAMERA_DISTANCE * sa:.6f} {CAMERA_HEIGHT_ABOVE_TORSO}",
        xyaxes=" ".join(f"{c:.6f}" for c in (*x_axis, *y_axis)),
    )
    torso.insert(0, camera)
    ET.indent(root, space="    ")
    return ET.tostring(root, encoding="unicode")


def _xml_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "vlmreward-mujoco"


def write_model_xml(text: str, stem: str) -> str:
    """Write an MJCF model to the cache folder under ``<stem>_<content hash>.xml`` (atomically, so
    concurrent processes write identical files); returns the file's absolute path."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = _xml_cache_dir() / f"{stem}_{digest}.xml"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        atomic_write_bytes(path, text.encode("utf-8"))
    return str(path)


def write_textured_humanoid_xml(high_quality_render: bool = False, width: int = 224, height: int = 224) -> str:
    """Write :func:`textured_humanoid_xml` to the cache folder; returns the file's absolute path."""
    return write_model_xml(textured_humanoid_xml(high_quality_render, width, height), "humanoid_textured")


def task_detector(task: str | None) -> Any:
    """The success detector of a Humanoid ``task`` (:data:`~vlmreward.envs.success.HUMANOID_POSES`), or None.

    Raises:
        InvalidParameterError: an unknown task.
    """
    if task is not None and task not in HUMANOID_POSES:
        raise InvalidParameterError(f"unknown Humanoid task {task!r}; use one of {sorted(HUMANOID_POSES)} or None.")
    return HUMANOID_POSES[task] if task is not None else None


class TaskSuccess:
    """Mixin for Humanoid environments: ``info["is_success"]`` from the detector of ``self.task``,
    set by :meth:`_set_task` (:func:`task_detector`)."""

    def _set_task(self, task: str | None) -> None:
        self._success_fn = task_detector(task)
        self.task = task

    def _success_info(self, info: dict[str, Any]) -> dict[str, Any]:
        if self._success_fn is not None:
            info["is_success"] = bool(self._success_fn(self.model, self.data))  # type: ignore[attr-defined]
        return info


class ExplainedRenderFailure:
    """Mixin for MuJoCo environments: a first ``render()`` that cannot open an OpenGL context
    raises :class:`RenderBackendError` with the ``MUJOCO_GL`` advice instead of the backend's error."""

    def render(self) -> Any:
        """The current frame (``uint8 [H, W, 3]`` for ``"rgb_array"``).

        Raises:
            RenderBackendError: no OpenGL context could be opened (headless machine without
                ``MUJOCO_GL`` set to a working backend).
        """
        viewers = getattr(self.mujoco_renderer, "_viewers", {})  # type: ignore[attr-defined]
        first = self.render_mode not in viewers  # type: ignore[attr-defined]
        try:
            return super().render()  # type: ignore[misc]
        except VLMRewardError:
            raise
        except Exception as exc:
            if not first:
                raise
            raise RenderBackendError(_backend_message(exc)) from exc


class TexturedHumanoidEnv(TaskSuccess, ExplainedRenderFailure, HumanoidEnv):
    """gymnasium's ``Humanoid-v5`` on the textured model, seen by the front camera, never terminating.

    Args:
        task: name of a pose in :data:`~vlmreward.envs.success.HUMANOID_POSES` (the paper's
            eight tasks: "kneeling", "lotus", "standing", "arms_raised", "splits",
            "hands_on_hips", "arms_crossed", "standing_on_one_leg") whose detector sets
            ``info["is_success"]`` at every step and reset; None for no success key.
        render_mode: None or "rgb_array" (frames ``uint8 [render_height, render_width, 3]``),
            or any other mode ``Humanoid-v5`` supports.
        render_width, render_height: frame size in pixels (default 224 × 224).
        high_quality_render: shadows and 4× multisampling (slow, ≈ 15 frames/s); default off.
        **kwargs: further ``Humanoid-v5`` arguments (reward weights, ``reset_noise_scale``, ...);
            ``terminate_when_unhealthy`` is always False, ``xml_file`` and camera are set here.

    The time limit comes from ``gymnasium.make`` (``max_episode_steps``, registered default 200).
    """

    def __init__(
        self,
        task: str | None = None,
        render_mode: str | None = None,
        render_width: int = 224,
        render_height: int = 224,
        high_quality_render: bool = False,
        **kwargs: Any,
    ) -> None:
        task_detector(task)  # an unknown task fails before the model is built
        if int(render_width) < 1 or int(render_height) < 1:
            raise InvalidParameterError(
                f"render size {render_width}x{render_height} must be positive (default 224x224)."
            )
        for fixed in ("xml_file", "terminate_when_unhealthy", "camera_id", "camera_name", "width", "height"):
            if fixed in kwargs:
                raise InvalidParameterError(
                    f"{fixed!r} is set by TexturedHumanoidEnv; use gymnasium's 'Humanoid-v5' to change it."
                )
        xml_file = write_textured_humanoid_xml(bool(high_quality_render), int(render_width), int(render_height))
        super().__init__(
            xml_file=xml_file,
            terminate_when_unhealthy=False,
            render_mode=render_mode,
            width=int(render_width),
            height=int(render_height),
            camera_name=CAMERA_NAME,
            **kwargs,
        )
        utils.EzPickle.__init__(
            self,
            task=task,
            render_mode=render_mode,
            render_width=render_width,
            render_height=render_height,
            high_quality_render=high_quality_render,
            **kwargs,
        )
        self._set_task(task)
        self.render_width, self.render_height = int(render_width), int(render_height)
        self.high_quality_render = bool(high_quality_render)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, self._success_info(info)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        return obs, self._success_info(info)
