"""What the operator sets when starting the app (`python app.py --help`), and the limits every path obeys."""
from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

from banet import DEFAULT_MODEL
from banet.upsampling import UPSAMPLING, guided_filter

from .disk import MB

WORKSPACE = Path(os.environ.get("BANET_WORKSPACE", Path(tempfile.gettempdir()) / "banet-workbench" / "datasets"))
# Gradio's caches when `python app.py` runs (app.py sets GRADIO_TEMP_DIR to its server's folder in
# it, disk.instance_folder): each server's alone, so what a killed server left can be removed
APP_CACHE = WORKSPACE.parent / "gradio"
JOBS_DIR = WORKSPACE.parent / "jobs"  # fine-tuning jobs, a folder per server: none outlives its server


@dataclass(frozen=True)
class Settings:
    """The server's settings; the defaults are those of a public Space."""

    weights: str = DEFAULT_MODEL
    upsampling: str = UPSAMPLING[0]  # how the model's confidence is brought to the photo's size (banet.upsampling)
    host: str = "127.0.0.1"
    port: int | None = None  # None: GRADIO_SERVER_PORT, else the first free port from 7860
    allow_server_folders: bool = False  # the Refine tab may open folders of this machine (loopback only)
    max_side: int = 2048  # photos and dataset images are shrunk to this long side as they are read
    max_file_mb: int = 50  # largest upload Gradio accepts
    heavy_calls: int = 2  # model, refinement and export calls at once, all endpoints together
    session_disk_mb: int = 2048  # uploaded datasets and downloads of one browser
    total_disk_mb: int = 20480  # uploaded datasets of every browser together
    cache_disk_mb: int = 4096  # Gradio's cache: uploads of the last hour and results handed out
    state_minutes: float = 60  # a session's photos and review queue are dropped this long after last use
    max_jobs: int = 1  # fine-tuning jobs at once on this server
    job_minutes: float = 60  # a fine-tuning job is stopped after this long
    keep_days: float = 7  # uploaded datasets untouched this long are removed

    def __post_init__(self) -> None:
        if self.allow_server_folders and not is_loopback(self.host):
            raise ValueError(f"--allow-server-folders is refused when binding to {self.host}: it lets every "
                             "client read and overwrite this machine's folders; bind to 127.0.0.1")
        guided_filter(self.upsampling)  # ValueError for an unknown name
        if self.max_side < 256:
            raise ValueError("--max-side must be at least 256")

    @property
    def max_file_size(self) -> int:
        return self.max_file_mb * MB

    @property
    def heavy(self) -> dict:
        """Event options for a heavy handler: every one shares the heavy_calls workers."""
        return {"concurrency_id": "heavy", "concurrency_limit": self.heavy_calls}


def is_loopback(host: str) -> bool:
    """True when `host` names only this machine (127.0.0.0/8, ::1 or a name resolving to them)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def parse_args(argv: list[str] | None = None) -> Settings:
    """Settings from the command line: one --flag per field, e.g. --max-side 4096, --allow-server-folders."""
    parser = argparse.ArgumentParser(prog="python app.py", description="BANet Workbench")
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", help=_HELP.get(f.name))
        else:
            kind = {"int": int, "float": float, "int | None": int}.get(f.type, str)
            default = kind(os.environ.get(_ENV[f.name], f.default)) if f.name in _ENV else f.default
            parser.add_argument(flag, type=kind, default=default, help=_HELP.get(f.name, "default: %(default)s"))
    try:
        return Settings(**vars(parser.parse_args(argv)))
    except ValueError as e:
        parser.error(str(e))


_ENV = {"host": "GRADIO_SERVER_NAME"}  # what a Hugging Face Space sets
_HELP = {"allow_server_folders": "let the Refine tab open dataset folders on this machine; only with "
                                 "--host 127.0.0.1 (never on a public server)",
         "host": "address to bind (default 127.0.0.1; 0.0.0.0 on a Space)",
         "upsampling": "bilinear (default) or guided: the masks' edges on the photo's edges, about 2 ms more "
                       "per photo; Refine's proposals use it too"}
