"""Facts about the machine and software a search runs on, recorded with each run of a study."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from typing import Any


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_facts() -> dict[str, Any]:
    """Versions, machine and start time, as JSON, without importing the packages themselves."""
    return {
        "elasticnas": _version("elasticnas"),
        "optuna": _version("optuna"),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "python": platform.python_version(),
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
