"""Reading weights: torchvision's named weights through its own hub cache (offline-safe), and
files — ``.pt``/``.pth`` with ``torch.load(weights_only=True)``, ``.safetensors``, cnndsl
checkpoints and run directories. Every failure is a CnnError naming the file; nothing is ever
loaded unsafely, and nothing is written anywhere but torchvision's own cache directory."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..errors import CnnError, error
from .refs import WeightsRef

if TYPE_CHECKING:
    import torch

DOWNLOAD_TIMEOUT = float(os.environ.get("CNNDSL_DOWNLOAD_TIMEOUT", "20"))   # seconds per network operation


def _fail(ref: WeightsRef, message: str, hint: str | None = None) -> CnnError:
    if ref.flag:
        return error(f"{ref.flag} {ref.text}: {message}", None, hint)
    return error(message, ref.span, hint)


def read_state(ref: WeightsRef) -> dict[str, "torch.Tensor"]:
    """The state dict a reference names."""
    return _hub(ref) if ref.named else read_file(ref)


def hub_file(url: str) -> Path:
    """Where torchvision keeps the file of ``url``: ``$TORCH_HOME/hub/checkpoints/<name>``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _hub(ref: WeightsRef) -> dict[str, "torch.Tensor"]:
    from torchvision.models import get_model_weights

    cached = hub_file(ref.url)
    missing_hint = (f"download {ref.url} and put it in {cached.parent}{os.sep} (as {cached.name}); "
                    "TORCH_HOME chooses that directory")
    if not cached.exists():
        if os.environ.get("CNNDSL_OFFLINE") == "1":
            raise _fail(ref, f"torchvision weights {ref.model}.{ref.name} are not in the local cache "
                             f"({cached.name}) and CNNDSL_OFFLINE=1 forbids downloading them", missing_hint)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)   # an unreachable network fails fast instead of hanging
        try:
            return _from_torchvision(ref, get_model_weights)
        except CnnError:
            raise
        except Exception as exc:  # noqa: BLE001 - offline, a proxy, a timeout, a bad hash: all say the same
            try:
                cached.unlink()   # never leave a partial download behind
            except OSError:
                pass
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _fail(ref, f"torchvision weights {ref.model}.{ref.name} are not in the local cache and could "
                             f"not be downloaded ({reason}); file {cached.name}, from {ref.url}",
                        missing_hint) from None
        finally:
            socket.setdefaulttimeout(previous)
    try:
        return _from_torchvision(ref, get_model_weights)
    except CnnError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt file in the cache
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(ref, f"the cached torchvision weights {cached} cannot be read: {reason}",
                    f"delete the file and fetch it again ({ref.url})") from None


def _from_torchvision(ref: WeightsRef, get_model_weights: Any) -> dict[str, "torch.Tensor"]:
    """torchvision's own loader (``WeightsEnum.get_state_dict``: the hub cache, then the download)."""
    weights = get_model_weights(ref.model)[ref.name]
    state = weights.get_state_dict(map_location="cpu", progress=False, check_hash=True, weights_only=True)
    return _tensors(state, ref, str(hub_file(ref.url)))


def read_file(ref: WeightsRef) -> dict[str, "torch.Tensor"]:
    import torch

    path = Path(ref.path)
    size = path.stat().st_size
    if size == 0:
        raise _fail(ref, f"weights file {path} is empty (0 bytes)", "the file is truncated; save or copy it again")
    if path.suffix == ".safetensors":
        return _safetensors(ref, path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - never retry unsafely
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        unsafe = _unsafe_globals(path)
        if unsafe:
            raise _fail(ref, f"weights file {path} holds Python objects, not only tensors ({', '.join(unsafe[:4])}); "
                             "it was not loaded, and no code in it ran",
                        "only plain state dicts are read (torch.load with weights_only=True); "
                        "re-save it with torch.save(model.state_dict(), ...) or as .safetensors") from None
        raise _fail(ref, f"weights file {path} cannot be read: {detail}",
                    "the file is truncated or corrupt, or not a PyTorch file (.pt/.pth) or .safetensors") from None
    return _tensors(obj, ref, str(path))


def _unsafe_globals(path: Path) -> list[str]:
    try:
        from torch.serialization import get_unsafe_globals_in_checkpoint

        return list(get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - truncated archives cannot be scanned either
        return []


def _safetensors(ref: WeightsRef, path: Path) -> dict[str, "torch.Tensor"]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise _fail(ref, f"reading {path} needs the safetensors package", "pip install safetensors") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - a corrupt or truncated file
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(ref, f"weights file {path} cannot be read: {detail}", "the file is truncated or corrupt") from None


def _tensors(obj: Any, ref: WeightsRef, where: str) -> dict[str, "torch.Tensor"]:
    """The state dict inside what was loaded: a bare state dict, a cnndsl checkpoint (``model``),
    or another trainer's (``state_dict``)."""
    import torch

    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        what = type(obj).__name__ if not isinstance(obj, dict) else "a dict without a state dict"
        raise _fail(ref, f"{where} holds {what}, not model weights",
                    "expected a state dict (torch.save(model.state_dict(), ...)), a cnndsl checkpoint or a run directory")
    return {str(k): v for k, v in obj.items()}
