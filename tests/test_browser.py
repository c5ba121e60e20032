"""The app in a real browser: headless Debian Chromium driven by Playwright, on real photos.

Screenshots go to $BANET_SCREENSHOTS when set (the README's come from
`BANET_SCREENSHOTS=docs/screenshots python -m pytest tests/test_browser.py`), else to a temp folder.
"""
import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CHROMIUM = Path("/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not installed (Debian package chromium; .ci/run installs it)", allow_module_level=True)

from workbench.refine_tab import ADD, REMOVE  # noqa: E402
from workbench.settings import WORKSPACE, Settings  # noqa: E402
from workbench.ui import launch  # noqa: E402

from .helpers import latest_dataset, zip_pairs  # noqa: E402

# A closed network: without these, Chromium keeps trying Google's services at start-up.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def app_url():
    app = launch(Settings(), prevent_thread_lock=True, quiet=True)  # as `python app.py` serves it
    try:
        yield app.local_url
    finally:
        app.close()


@pytest.fixture(scope="module")
def page(app_url, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(str(profile), executable_path=str(CHROMIUM), args=FLAGS,
                                                       headless=True, viewport={"width": 1400, "height": 1000})
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app_url)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("BANET_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def upload(page, elem_id: str, path: Path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))


def test_inspect_segments_a_real_photo(page, shots, pfcn_paths):
    expect = playwright.expect
    upload(page, "inspect-photo", pfcn_paths[0])
    page.locator("#inspect-go").click()
    expect(page.locator("#inspect-timing")).to_contain_text("ms model time", timeout=TIMEOUT_MS)
    expect(page.locator("#inspect-boundary-attention img")).to_be_visible()
    page.screenshot(path=str(shots / "inspect.png"), full_page=True)


def test_compare_scores_an_annotation(page, shots, pfcn_paths):
    expect = playwright.expect
    page.get_by_role("tab", name="Compare").click()
    photo = pfcn_paths[1]
    upload(page, "compare-photo", photo)
    upload(page, "compare-annotation", photo.parents[1] / "masks" / f"{photo.stem}.png")
    page.locator("#compare-go").click()
    expect(page.locator("#compare-metrics")).to_contain_text("Boundary IoU", timeout=TIMEOUT_MS)
    page.screenshot(path=str(shots / "compare.png"), full_page=True)


def test_refine_accepts_a_proposal_with_the_keyboard(page, shots, pfcn_paths, tmp_path):
    from data_tools import review

    expect = playwright.expect
    archive = zip_pairs(pfcn_paths[:4], tmp_path / "coarse.zip")
    page.get_by_role("tab", name="Refine").click()
    upload(page, "refine-archive", archive)
    page.locator("#refine-open").click()
    header = page.locator("#refine-header")
    expect(header).to_contain_text("0 of 4 reviewed", timeout=TIMEOUT_MS)
    first = header.locator("strong").inner_text()
    page.screenshot(path=str(shots / "refine.png"), full_page=True)
    header.click()  # focus outside any text field, so the shortcut reaches the page
    page.keyboard.press("a")
    expect(header).to_contain_text("1 of 4 reviewed", timeout=TIMEOUT_MS)
    dataset = latest_dataset(WORKSPACE)
    assert review.status(dataset[first]) == "accepted"


def test_refine_brush_starts_as_add_on_every_sample(page):  # the dataset the test above opened
    expect = playwright.expect
    add, remove = (f"rgba({', '.join(map(str, rgb))}" for rgb in (ADD, REMOVE))
    colour = page.locator("button[aria-label=Color]")
    expect(colour).to_have_attribute("style", re.compile(re.escape(add)))
    colour.click()
    page.locator(f"[style*='{remove[5:]}']").last.click()  # the swatch that paints background
    expect(colour).to_have_attribute("style", re.compile(re.escape(remove)))
    page.locator("#refine-next").click()
    expect(colour).to_have_attribute("style", re.compile(re.escape(add)), timeout=TIMEOUT_MS)


def test_export_and_retrain_run_from_the_browser(page, shots, pfcn_paths):  # the dataset Refine opened
    expect = playwright.expect
    page.get_by_role("tab", name="Export & retrain").click()
    page.locator("#export-go").click()
    expect(page.locator("#export-file")).to_contain_text(".zip", timeout=TIMEOUT_MS)
    iterations = page.locator("#retrain-iterations input[type=number]")
    iterations.fill("20")
    iterations.press("Enter")
    page.locator("#retrain-start").click()
    expect(page.locator("#retrain-status")).to_contain_text("done", timeout=4 * TIMEOUT_MS)
    expect(page.get_by_role("button", name="Use the fine-tuned weights")).to_be_visible()
    page.screenshot(path=str(shots / "export-retrain.png"), full_page=True)
