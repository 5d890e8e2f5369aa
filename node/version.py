"""What software a node runs, as it reports it: ``web3_clientVersion``,
``lianxin_getNodeVersion``, ``lianxin node status`` and ``lianxin net status``.

The version is the installed ``lianxin`` distribution's, with the build label a deployment
stamps on its processes in ``LIANXIN_BUILD`` (a release tag, a package revision: letters,
digits, ``.``, ``-`` and ``_``, at most 64), and the digest of the parameter schedule the
node loaded. During a rolling upgrade these tell the operator, node by node, which ones run
the new release and hold the new schedule.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from chain.upgrades import ParameterSchedule
from node.config import ConfigError

BUILD_ENV = "LIANXIN_BUILD"
"""Environment variable holding the build label."""

_BUILD_LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")


def distribution_version() -> str:
    """The version of the installed ``lianxin`` distribution (``0+unknown`` when it is run
    from a source tree that was never installed)."""
    try:
        return metadata.version("lianxin")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class SoftwareVersion:
    """The software one node process runs."""

    version: str
    """The distribution version, e.g. ``0.1.0``."""
    build: str | None
    """The deployment's build label, if it set one."""
    schedule: ParameterSchedule
    """The parameter schedule the node loaded from its genesis file."""

    @classmethod
    def current(cls, environ: Mapping[str, str], schedule: ParameterSchedule) -> SoftwareVersion:
        """This process's version, with the build label from ``environ``; raises
        ConfigError for a label that is not 1-64 of ``[A-Za-z0-9._-]``."""
        build = environ.get(BUILD_ENV)
        if build is not None and not _BUILD_LABEL.fullmatch(build):
            raise ConfigError(f"{BUILD_ENV} must be 1 to 64 of A-Z a-z 0-9 . - _")
        return cls(distribution_version(), build, schedule)

    @property
    def full_version(self) -> str:
        """``0.1.0`` or ``0.1.0+<build>``."""
        return self.version if self.build is None else f"{self.version}+{self.build}"

    @property
    def client_version(self) -> str:
        """What ``web3_clientVersion`` answers: ``lianxin/0.1.0+<build>/python3.12.3``."""
        return f"lianxin/{self.full_version}/python{platform.python_version()}"

    def describe(self) -> dict[str, Any]:
        """What ``lianxin_getNodeVersion`` answers."""
        return {
            "clientVersion": self.client_version,
            "version": self.version,
            "build": self.build,
            "scheduleDigest": "0x" + self.schedule.digest().hex(),
            "schedule": [
                {"height": hex(u.height), "parameter": u.parameter, "value": hex(u.value)}
                for u in self.schedule.upgrades
            ],
        }
