"""BANet Workbench: `python app.py` serves the app on the bundled default weights (`--help`: settings)."""
import os

from workbench.disk import instance_folder
from workbench.settings import APP_CACHE, parse_args

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_TEMP_DIR", str(instance_folder(APP_CACHE)))  # before Gradio is imported

from workbench.ui import launch  # noqa: E402

if __name__ == "__main__":
    launch(parse_args())
