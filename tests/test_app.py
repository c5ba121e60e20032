"""The viewer answers through gradio_client on a real photo."""
import os

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402

from workbench.ui import build_app  # noqa: E402


@pytest.fixture(scope="module")
def client(fitted_model, tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights") / "fitted"
    fitted_model.save_pretrained(weights)
    app = build_app(str(weights))
    app.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield Client(app.local_url, verbose=False)
    finally:
        app.close()


def test_inspect_returns_every_panel_for_a_real_photo(client, pfcn_paths):
    from PIL import Image

    *panels, timing = client.predict(handle_file(str(pfcn_paths[0])), 0.5, api_name="/inspect")
    assert len(panels) == 5 and "ms model time" in timing
    for panel in panels:
        picture = np.asarray(Image.open(panel))
        assert picture.shape[:2] == (800, 600) and picture.std() > 0


def test_inspect_reports_a_missing_photo_as_an_error_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Upload a photo"):
        client.predict(None, 0.5, api_name="/inspect")
