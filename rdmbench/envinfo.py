"""Library versions and device, recorded beside every result (same seed != same bits across hardware)."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

PACKAGES = ("rdmbench", "torch", "torchvision", "diffusers", "torch-fidelity", "numpy", "faiss-cpu",
            "faiss-gpu-cu12", "scikit-learn", "pluggy", "pydantic", "open_clip_torch")


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str | None = None) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(),
                            "cpu": cpu_name(), "versions": versions}
    if "torch" in sys.modules or device:
        import torch

        from rdmbench.device import threads_in_force

        info["torch_threads"] = torch.get_num_threads()
        info["threads"] = threads_in_force()  # what the run computed with (its config's ``threads``, applied)
        info["device"] = device or "cpu"
        if torch.cuda.is_available():
            info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info
