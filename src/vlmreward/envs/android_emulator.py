"""The real Android emulator's settings for :class:`~vlmreward.envs.android.AndroidOpenAppEnv`, checked before anything starts.

:class:`EmulatorSettings` is the ``emulator:`` mapping of ``env.kwargs`` (its fields map one to
one onto android_env's ``EmulatorLauncherConfig`` and ``AdbControllerConfig``);
:func:`resolve_emulator_settings` fills in the SDK's paths and raises :class:`AndroidSetupError`
with one line naming the first missing piece (no AVD name, no SDK, no ``adb``, no emulator
binary, no KVM or no permission on it, no such AVD). Imports neither android_env nor the SDK.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vlmreward.errors import InvalidParameterError
from vlmreward.config.errors import describe_errors

__all__ = ["AndroidSetupError", "EmulatorSettings", "parse_emulator_settings", "resolve_emulator_settings"]


class AndroidSetupError(InvalidParameterError):
    """The Android emulator cannot be started here: no SDK, ``adb``, emulator binary, KVM or AVD."""


# ---------------------------------------------------------------------------------------------
# the real emulator's settings


class EmulatorSettings(BaseModel):
    """``emulator:`` of :class:`AndroidOpenAppEnv` (``env.kwargs.emulator`` in a run config).

    Paths may use ``~``. Unset paths come from ``$ANDROID_SDK_ROOT`` (or ``$ANDROID_HOME``, else
    ``~/Android/Sdk``): ``<sdk>/emulator/emulator`` and ``<sdk>/platform-tools/adb``; the AVD
    directory from ``$ANDROID_AVD_HOME`` (else ``~/.android/avd``). Give all three ports to
    attach to an emulator that is already running (then only ``adb`` is needed). The fields map
    one to one onto android_env's ``EmulatorLauncherConfig`` and ``AdbControllerConfig``;
    ``gpu_mode`` defaults to ``swiftshader_indirect`` (software rendering: works without a GPU).
    """

    model_config = ConfigDict(extra="forbid")

    avd_name: str = ""
    sdk_root: Optional[str] = None
    emulator_path: Optional[str] = None
    adb_path: Optional[str] = None
    avd_home: Optional[str] = None
    kvm_device: str = "/dev/kvm"
    run_headless: bool = True
    gpu_mode: Literal["host", "swangle_indirect", "swiftshader_indirect"] = "swiftshader_indirect"
    snapshot_name: str = ""
    restrict_network: bool = False
    adb_port: int = Field(0, ge=0)
    emulator_console_port: int = Field(0, ge=0)
    grpc_port: int = Field(0, ge=0)
    interaction_rate_sec: float = Field(0.0, ge=0.0)
    tmp_dir: str = "/tmp/android_env/simulator/"

    @property
    def attach(self) -> bool:
        """Whether the settings name a running emulator (all three ports given)."""
        return bool(self.adb_port and self.emulator_console_port and self.grpc_port)


def parse_emulator_settings(settings: Mapping[str, Any] | EmulatorSettings | None) -> EmulatorSettings:
    """Validate the ``emulator:`` mapping (None: all defaults).

    Raises:
        AndroidSetupError: unknown keys or values of the wrong type; the message names each.
    """
    if isinstance(settings, EmulatorSettings):
        return settings
    if settings is not None and not isinstance(settings, Mapping):
        raise AndroidSetupError(f"emulator must be a mapping of settings (avd_name, sdk_root, ...); got {type(settings).__name__}.")
    try:
        return EmulatorSettings(**dict(settings or {}))
    except ValidationError as err:
        raise AndroidSetupError(describe_errors(err, EmulatorSettings, prefix="emulator.") + ".") from None


def resolve_emulator_settings(
    settings: Mapping[str, Any] | EmulatorSettings | None, environ: Mapping[str, str] | None = None
) -> EmulatorSettings:
    """Check that the emulator can start here and return its settings with absolute paths.

    Args:
        settings: the ``emulator:`` mapping (or validated settings, or None).
        environ: environment variables (default ``os.environ``).

    Returns:
        The settings, with ``sdk_root``, ``emulator_path``, ``adb_path`` and ``avd_home`` resolved.

    Raises:
        AndroidSetupError: one line naming the first missing piece: no AVD name, no SDK
            directory, no ``adb``, no emulator binary, no KVM device (or no permission on it),
            no such AVD.
    """
    environ = os.environ if environ is None else environ
    settings = parse_emulator_settings(settings)
    see = "see docs/android.md"
    if not settings.avd_name and not settings.attach:
        raise AndroidSetupError(
            "emulator.avd_name is required: the Android Virtual Device to start (list yours with `emulator -list-avds`; "
            f"{see}), or give adb_port, emulator_console_port and grpc_port of a running emulator."
        )
    sdk = settings.sdk_root or environ.get("ANDROID_SDK_ROOT") or environ.get("ANDROID_HOME") or "~/Android/Sdk"
    sdk_root = Path(sdk).expanduser()
    adb = Path(settings.adb_path).expanduser() if settings.adb_path else sdk_root / "platform-tools" / "adb"
    emulator = Path(settings.emulator_path).expanduser() if settings.emulator_path else sdk_root / "emulator" / "emulator"
    avd_home = Path(settings.avd_home or environ.get("ANDROID_AVD_HOME") or "~/.android/avd").expanduser()
    if not settings.adb_path and not sdk_root.is_dir():
        raise AndroidSetupError(
            f"no Android SDK at {sdk_root}: install the Android command-line tools and set emulator.sdk_root "
            f"(or ANDROID_SDK_ROOT); {see}."
        )
    if not (adb.is_file() and os.access(adb, os.X_OK)):
        found = shutil.which("adb")
        hint = f" (there is one at {found}: set emulator.adb_path)" if found else ""
        raise AndroidSetupError(f"adb not found at {adb}{hint}; install the SDK's platform-tools ({see}).")
    if not settings.attach:
        if not (emulator.is_file() and os.access(emulator, os.X_OK)):
            raise AndroidSetupError(
                f"the Android emulator is not at {emulator}; install it with `sdkmanager emulator` or set emulator.emulator_path ({see})."
            )
        kvm = Path(settings.kvm_device)
        if not kvm.exists():
            raise AndroidSetupError(
                f"{kvm} does not exist: the Android emulator needs KVM (hardware virtualisation enabled, the kvm module "
                f"loaded); {see}."
            )
        if not os.access(kvm, os.R_OK | os.W_OK):
            raise AndroidSetupError(f"no permission to use {kvm}: add your user to the kvm group (sudo adduser $USER kvm); {see}.")
        if not (avd_home / f"{settings.avd_name}.ini").is_file() and not (avd_home / f"{settings.avd_name}.avd").is_dir():
            raise AndroidSetupError(
                f"AVD {settings.avd_name!r} not found in {avd_home}; create it with avdmanager create avd -n {settings.avd_name} "
                f"-k \"system-images;android-34;google_apis;x86_64\" or set emulator.avd_home ({see})."
            )
    return settings.model_copy(
        update={"sdk_root": str(sdk_root), "adb_path": str(adb), "emulator_path": str(emulator), "avd_home": str(avd_home)}
    )
