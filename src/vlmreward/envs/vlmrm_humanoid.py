"""The VLM-RM reference Humanoid: Humanoid-v4 physics, textured model, fixed front camera.

:class:`VLMRMHumanoidEnv` (``vlmreward/VLMRM-Humanoid-v0``) follows the reference code
(``vlmrm/envs/mujoco/clip_rewarded_humanoid.py`` and ``humanoid_textured.xml`` at commit
811d820; reference.md §5):

* gymnasium's ``Humanoid-v4`` dynamics, reward and 376-d observation, frame skip 5, reset noise
  0.01; no termination when unhealthy; every episode ends after ``episode_length`` steps (100
  in the paper) with ``terminated=True`` (``time_limit="truncate"`` for ``truncated=True``);
* the model is gymnasium's ``humanoid.xml`` re-textured as the reference's: a skybox from
  ``sky.png``, the 20 × 20 m floor plane tiled with ``tiles.png`` 60 × 60 times (no
  reflectance, shininess or specular), every body geom in a uniform cube texture from
  ``robot.png`` (specular 1, shininess 1, white base colour), one directional light from above
  (diffuse 1, specular 0.5, direction ``(0, 0, -1.5)``);
* frames ``uint8 [480, 480, 3]`` from MuJoCo's free camera with ``lookat (0, 0, 1)``, distance
  3.5 m, azimuth 180° (facing the body's front, which looks along ``+x``) and elevation −10°; the
  camera does not follow the body.

``textures="ours"`` (default) draws the three pictures with :mod:`vlmreward.envs.procedural`;
``textures="reference"`` uses the reference's own (:mod:`vlmreward.envs.textures`).
``info["is_success"]`` comes from the detector of ``task`` (:data:`~vlmreward.envs.success.HUMANOID_POSES`).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
from gymnasium import spaces, utils
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.envs.mujoco.humanoid_v4 import HumanoidEnv as HumanoidV4Env

from vlmreward.envs.humanoid import (
    ExplainedRenderFailure,
    TaskSuccess,
    _child,
    _gymnasium_humanoid_xml,
    task_detector,
    write_model_xml,
)
from vlmreward.envs.textures import texture_files
from vlmreward.envs.vlmrm import EpisodeClock, TimeLimitMode

__all__ = ["VLMRMHumanoidEnv", "reference_humanoid_xml", "REFERENCE_CAMERA", "VLMRM_HUMANOID_EPISODE_LENGTH", "RENDER_SIZE"]

VLMRM_HUMANOID_EPISODE_LENGTH = 100
"""Episode length of the paper's Humanoid experiments (appendix C.2)."""
RENDER_SIZE = 480
"""Frame side in pixels: gymnasium's MuJoCo default, which the reference keeps."""
REFERENCE_CAMERA: dict[str, Any] = {
    "lookat": np.array([0.0, 0.0, 1.0]),
    "distance": 3.5,
    "azimuth": 180.0,
    "elevation": -10.0,
}
"""The reference's ``camera_config``: attributes of MuJoCo's free camera (metres, degrees)."""
PICTURES = ("sky.png", "tiles.png", "robot.png")


def reference_humanoid_xml(
    sky: str | os.PathLike, tiles: str | os.PathLike, robot: str | os.PathLike, high_quality_render: bool = True
) -> str:
    """gymnasium's humanoid MJCF with the reference's textures, material and light, as a string.

    Args:
        sky, tiles, robot: paths of the skybox, floor and body pictures (PNG).
        high_quality_render: MuJoCo's default quality, as the reference renders (shadows from a
            4096² map, 4× multisampling); False turns both off (83 → 16 ms a 480 × 480 frame on a 2-core CPU,
            without the body's shadow on the floor).
    """
    root = ET.fromstring(_gymnasium_humanoid_xml())
    if not high_quality_render:
        quality = _child(_child(root, "visual"), "quality")
        quality.set("shadowsize", "0")
        quality.set("offsamples", "0")
    default_geom = root.find("default/geom")
    if default_geom is not None:
        default_geom.set("rgba", "1 1 1 1")
    asset = _child(root, "asset")
    for element in list(asset):
        asset.remove(element)
    ET.SubElement(asset, "texture", type="skybox", file=os.fspath(sky), width="100", height="100")
    ET.SubElement(asset, "texture", name="texplane", type="2d", file=os.fspath(tiles), width="100", height="100")
    ET.SubElement(
        asset, "material", name="MatPlane", texture="texplane", texrepeat="60 60",
        reflectance="0", shininess="0", specular="0",
    )
    ET.SubElement(asset, "texture", name="texgeom", type="cube", file=os.fspath(robot), width="127", height="1278")
    ET.SubElement(asset, "material", name="geom", texture="texgeom", texuniform="true", specular="1", shininess="1")
    worldbody = _child(root, "worldbody")
    for light in list(worldbody.findall("light")):
        worldbody.remove(light)
    worldbody.insert(0, ET.Element(
        "light", cutoff="100", diffuse="1 1 1", dir="0 0 -1.5", directional="true", exponent="1",
        pos="0 0 1", specular=".5 .5 .5",
    ))
    floor = worldbody.find("geom[@name='floor']")
    if floor is not None:
        floor.set("rgba", "1 1 1 1")
        floor.set("size", "20 20 0.125")
    ET.indent(root, space="    ")
    return ET.tostring(root, encoding="unicode")


class VLMRMHumanoidEnv(TaskSuccess, ExplainedRenderFailure, HumanoidV4Env):
    """Humanoid-v4 as the VLM-RM reference trains it (module docstring).

    Args:
        episode_length: steps per episode (default 100, the paper's).
        time_limit: ``"terminate"`` (default, the reference's) or ``"truncate"``.
        task: a pose of :data:`~vlmreward.envs.success.HUMANOID_POSES` whose detector sets
            ``info["is_success"]`` at every step and reset; None for no success key.
        textures: ``"ours"`` (default) or ``"reference"``.
        textures_dir: a local copy of the reference pictures (with ``textures="reference"``).
        high_quality_render: MuJoCo's default shadows and multisampling, as the reference
            (default); False for fast frames without them (about 5× faster on a CPU at 480 × 480).
        render_mode: None or ``"rgb_array"`` (or another mode MuJoCo environments support).
        width, height: frame size (default 480 × 480, the reference's).
        reset_noise_scale: Humanoid-v4's (default 0.01, the reference's).

    Raises:
        InvalidParameterError: an unknown task, a bad episode length, time limit or textures.
        TexturesNotAvailableError: reference textures neither cached nor downloadable.
    """

    def __init__(
        self,
        episode_length: int = VLMRM_HUMANOID_EPISODE_LENGTH,
        time_limit: TimeLimitMode = "terminate",
        task: str | None = None,
        textures: str = "ours",
        textures_dir: str | os.PathLike | None = None,
        high_quality_render: bool = True,
        render_mode: str | None = None,
        width: int = RENDER_SIZE,
        height: int = RENDER_SIZE,
        reset_noise_scale: float = 1e-2,
    ) -> None:
        task_detector(task)  # an unknown task fails before the model is built
        self.clock = EpisodeClock(episode_length, time_limit)
        utils.EzPickle.__init__(
            self, episode_length=episode_length, time_limit=time_limit, task=task, textures=textures,
            textures_dir=textures_dir, high_quality_render=high_quality_render, render_mode=render_mode, width=width,
            height=height,
            reset_noise_scale=reset_noise_scale,
        )
        # Humanoid-v4's own constructor loads gymnasium's untextured model; set what it sets, with the reference's values.
        self._forward_reward_weight = 1.25
        self._ctrl_cost_weight = 0.1
        self._healthy_reward = 5.0
        self._terminate_when_unhealthy = False
        self._healthy_z_range = (1.0, 2.0)
        self._reset_noise_scale = float(reset_noise_scale)
        self._exclude_current_positions_from_observation = True
        paths = texture_files(textures, PICTURES, textures_dir)
        xml = reference_humanoid_xml(*(paths[p] for p in PICTURES), high_quality_render=bool(high_quality_render))
        xml_file = write_model_xml(xml, f"humanoid_vlmrm_{textures}")
        MujocoEnv.__init__(
            self,
            xml_file,
            5,
            observation_space=spaces.Box(low=-np.inf, high=np.inf, shape=(376,), dtype=np.float64),
            default_camera_config=REFERENCE_CAMERA,
            camera_id=-1,
            render_mode=render_mode,
            width=int(width),
            height=int(height),
        )
        self._set_task(task)
        self.textures = textures

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, _, _, info = super().step(action)  # never unhealthy-terminated (terminate_when_unhealthy False)
        terminated, truncated = self.clock.tick()
        return obs, float(reward), terminated, truncated, self._success_info(info)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.clock.reset()
        obs, info = super().reset(seed=seed, options=options)
        return obs, self._success_info(info)
