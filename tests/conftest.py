"""Shared fixtures: real PFCN photos from ../shared/data (tests skip when it is absent)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from banet import BANet, BANetLoss
from training.config import DATA_ROOT as DATA
from training.suite import build_suite

from .helpers import make_batch, read_pair

PFCN_TEST = DATA / "pfcn" / "test"


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory) -> Path:
    """Exported graphs go to a fresh folder, never to the user's cache."""
    folder = tmp_path_factory.mktemp("banet-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BANET_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def pfcn_paths() -> list[Path]:
    if not PFCN_TEST.is_dir():
        pytest.skip(f"real photos not found at {PFCN_TEST} (../shared/data beside the project)")
    return sorted((PFCN_TEST / "images").glob("*.jpg"))


@pytest.fixture(scope="session")
def pfcn_pairs(pfcn_paths: list[Path]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Eight real test photos with their human masks, at full resolution (800x600)."""
    return [read_pair(p) for p in pfcn_paths[:8]]


@pytest.fixture(scope="session")
def fitted_model(pfcn_pairs) -> BANet:
    """BANet-64 fitted for a few seconds on real photos, so its masks are not constant."""
    torch.manual_seed(0)
    model = BANet(input_size=160)
    image, mask, band = make_batch(pfcn_pairs, (160, 128))
    loss_fn = BANetLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        loss_fn(model(image), image, mask, band).total.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def suite(tmp_path_factory) -> dict[str, Path]:
    """The evaluation suite's domain folders (training/suite.py), built once for the session."""
    if not all((DATA / d).is_dir() for d in ("pfcn", "ccp", "backgrounds")):
        pytest.skip(f"PFCN, CCP and backgrounds not found under {DATA}")
    return build_suite(tmp_path_factory.mktemp("suite"), DATA)
