"""Find and load weights: bundled checkpoints, local folders, or Hugging Face Hub repo ids.

Only safetensors are ever read: pickled checkpoints (.bin, .pt, .pth) are refused.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from huggingface_hub.errors import (
    GatedRepoError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError

from .model import BANet

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).parent / "pretrained"
DEFAULT_MODEL = "banet-64"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class WeightsError(ValueError):
    """Weights could not be found or read; the message says which and why."""


def bundled_models() -> list[str]:
    """Names of the checkpoints shipped inside the package."""
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / WEIGHTS_FILE).is_file())


def local_folder(name_or_path: str | os.PathLike) -> Path:
    """The folder on this machine holding a bundled name's or a local path's weights."""
    name = str(name_or_path)
    folder = BUNDLED_DIR / name if name in bundled_models() else Path(name).expanduser()
    if not (folder / WEIGHTS_FILE).is_file():
        raise WeightsError(f"{name}: not a bundled model or a local folder with {WEIGHTS_FILE}")
    return folder


def _load_folder(folder: Path, device: str) -> BANet:
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        pickled = [p.name for p in folder.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        hint = f" (found {', '.join(pickled)}: pickled weights are never loaded)" if pickled else ""
        raise WeightsError(f"{folder}: no {WEIGHTS_FILE}{hint}")
    if not (folder / CONFIG_FILE).is_file():
        raise WeightsError(f"{folder}: no {CONFIG_FILE} next to the weights")
    try:
        return BANet.from_pretrained(folder, map_location=device, strict=True)
    except SafetensorError as e:
        raise WeightsError(f"{weights}: not a valid safetensors file ({e})") from e
    except RuntimeError as e:  # shape or key mismatch between config and tensors
        raise WeightsError(f"{weights}: weights do not match {CONFIG_FILE} ({e})") from e
    except (ValueError, TypeError, KeyError, AttributeError, OSError) as e:  # config.json unreadable or bad
        raise WeightsError(f"{folder / CONFIG_FILE}: not a usable model config ({e.__class__.__name__}: {e})") from e


def load_model(name_or_path: str | os.PathLike = DEFAULT_MODEL, *, device: str = "cpu",
               revision: str | None = None, cache_dir: str | os.PathLike | None = None) -> BANet:
    """A bundled name, a folder with model.safetensors + config.json, or a Hub repo id.

    For a repo id: download when online; when offline or unreachable, use the local Hub cache;
    failing that, fall back to the bundled default with a warning. A repo that the Hub says does
    not exist is an error, not a fallback.
    """
    name = str(name_or_path)
    if name in bundled_models():
        return _load_folder(BUNDLED_DIR / name, device)
    path = Path(name).expanduser()
    if path.is_dir():
        return _load_folder(path, device)
    if path.is_file() and path.name == WEIGHTS_FILE:
        return _load_folder(path.parent, device)
    if path.is_file():
        raise WeightsError(f"{path.name}: pass the folder holding {WEIGHTS_FILE} and {CONFIG_FILE}; "
                           "pickled checkpoints (.bin/.pt/.pth) are never loaded")
    if name.count("/") != 1:
        raise WeightsError(
            f"{name}: not a bundled model ({', '.join(bundled_models())}), a folder, or a Hub repo id"
        )
    hub = dict(map_location=device, strict=True, revision=revision, cache_dir=cache_dir)
    try:
        return BANet.from_pretrained(name, **hub)
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError, RemoteEntryNotFoundError) as e:
        raise WeightsError(f"{name}: {e.__class__.__name__} on the Hub") from e
    except Exception as online:  # offline mode, DNS failure, timeout, proxy...
        logger.info("Hub unreachable for %s (%s); trying the local cache", name, online)
    try:
        return BANet.from_pretrained(name, local_files_only=True, **hub)
    except Exception as cached:
        logger.warning("%s is neither reachable nor cached (%s); using bundled %s",
                       name, cached.__class__.__name__, DEFAULT_MODEL)
        return _load_folder(BUNDLED_DIR / DEFAULT_MODEL, device)

