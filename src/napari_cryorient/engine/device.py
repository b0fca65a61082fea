"""The one place that turns a device name into a torch device."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """A checked torch device.

    Parameters
    ----------
    name
        ``"auto"`` (CUDA when present, else CPU: MPS lacks operations the method uses, so it
        is only used when asked for by name), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
        ``"mps"``.

    Raises
    ------
    ValueError
        Unknown name, or a device that is not available here.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} requested but there are {torch.cuda.device_count()} "
                             "CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but MPS is not available")
    return dev
