"""The config layer beneath ``rl``, ``eval`` and ``relabel``: field types, the ``model`` section,
``--set`` overrides, path resolution, and the one translation of pydantic's errors.

* :mod:`vlmreward.config.fields`: ``UnitFloat``, ``PositiveFloat``, ``Count``, ``Prompts``, ...
* :mod:`vlmreward.config.model`: :class:`ModelConfig` (``model:``) and its ``ModelSpec``.
* :mod:`vlmreward.config.overrides`: :func:`apply_overrides`, :func:`parse_value`,
  :func:`resolve_config_paths`.
* :mod:`vlmreward.config.errors`: :class:`ConfigError`, :func:`describe_errors`.
"""

from vlmreward.config.errors import ConfigError, describe_error, describe_errors
from vlmreward.config.model import ModelConfig
from vlmreward.config.overrides import MODEL_PATH_KEYS, apply_overrides, parse_value, resolve_config_paths

__all__ = [
    "ConfigError", "describe_error", "describe_errors", "ModelConfig", "apply_overrides", "parse_value",
    "resolve_config_paths", "MODEL_PATH_KEYS",
]
