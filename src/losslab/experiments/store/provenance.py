"""Provenance: what produced a results folder (versions, machine, device and the git commit of losslab)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

import losslab


def git_commit() -> str | None:
    """The commit of the losslab checkout this runs from, or None (an installed wheel, no git)."""
    try:
        source = Path(losslab.__file__).resolve().parent
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() if commit.returncode == 0 else None


def environment(device: str = "cpu") -> dict:
    """Versions, machine and git commit, so results say what produced them."""
    import scipy
    import torch

    info = {
        "losslab": losslab.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "device": device,
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    commit = git_commit()
    if commit is not None:
        info["git_commit"] = commit
    return info
