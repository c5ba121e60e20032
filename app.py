"""BANet Workbench: `python app.py` serves the app on the bundled default weights."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from workbench.ui import HEAD, build_app  # noqa: E402  (after the analytics switch)

if __name__ == "__main__":
    build_app().queue(default_concurrency_limit=2).launch(head=HEAD)
