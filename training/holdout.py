"""The frozen held-out split: CCP photos and background scenes that training never sees.

`holdout.json` beside this file lists them (150 of the 703 CCP ids and 24 of the 109 background
scenes, drawn once with seed 20261125). The evaluation suite is built only from these; training
leaves them out of any folder whose name starts with the source's name (`ccp`, `ccp320`,
`backgrounds`, ...), so a `data_tools.resize` copy keeps the split.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from banet.image_io import photo_files

HOLDOUT_FILE = Path(__file__).with_name("holdout.json")


@cache
def _holdout() -> dict[str, frozenset[str]]:
    data = json.loads(HOLDOUT_FILE.read_text())
    return {"ccp": frozenset(data["ccp"]), "backgrounds": frozenset(data["background_scenes"])}


def held_out_ids(folder: str | Path) -> frozenset[str]:
    """Sample ids of a CCP folder that are held out; empty for any other folder."""
    return _holdout()["ccp"] if Path(folder).name.startswith("ccp") else frozenset()


def background_scene(path: str | Path) -> str:
    """Scene of a background photo: the faces of one cubemap (`<scene>__posx.jpg`) share one."""
    return Path(path).stem.split("__")[0]


def background_paths(folder: str | Path, held_out: bool) -> list[Path]:
    """Photos of a backgrounds folder (its images/ if present) in the held-out scenes, or the rest."""
    scenes = _holdout()["backgrounds"]
    return [p for p in photo_files(folder) if (background_scene(p) in scenes) == held_out]
