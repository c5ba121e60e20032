"""A light client of a Gradio app's HTTP protocol, spoken as its web page speaks it: upload, join the
queue, read the answer from the event stream, fetch the files, keep a heartbeat.

benchmarks.load runs its sessions with it on the server's own machine: gradio_client polls in
threads every 50 ms and took 40% of the 2 cores there, so the load test measured its own client.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

API = "gradio_api/"


class AppError(Exception):
    """The app answered a call with an error (its message), or not at all."""


@dataclass(frozen=True)
class App:
    """A running app: its address and, per api_name, the event's index and which inputs are session state."""

    http: httpx.AsyncClient
    url: str  # ends with "/"
    endpoints: dict[str, tuple[int, list[bool]]]

    @classmethod
    async def connect(cls, http: httpx.AsyncClient, url: str) -> App:
        config = (await http.get(url + "config")).raise_for_status().json()
        kinds = {c["id"]: c.get("type") for c in config["components"]}
        endpoints = {d["api_name"]: (index, [kinds.get(c) == "state" for c in d["inputs"]])
                     for index, d in enumerate(config["dependencies"]) if d.get("api_name")}
        return cls(http, url, endpoints)


class Session:
    """One browser tab: a session hash, the calls it makes one after another, and its heartbeat."""

    def __init__(self, app: App) -> None:
        self.app, self.hash = app, uuid.uuid4().hex[:11]
        self._heartbeat: asyncio.Task | None = None

    async def __aenter__(self) -> Session:
        self._heartbeat = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc) -> None:
        """Closing the heartbeat is closing the tab: the server then unloads the session."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)

    async def _beat(self) -> None:
        async with self.app.http.stream("GET", f"{self.app.url}{API}heartbeat/{self.hash}", timeout=None) as stream:
            async for _ in stream.aiter_bytes():
                pass

    async def upload(self, path: Path) -> dict:
        """The file as an input value (Gradio's FileData)."""
        with path.open("rb") as f:
            answer = await self.app.http.post(self.app.url + API + "upload", files={"files": (path.name, f)})
        return {"path": answer.raise_for_status().json()[0], "orig_name": path.name,
                "meta": {"_type": "gradio.FileData"}}

    async def call(self, api_name: str, *args) -> list:
        """The event's outputs; `args` are its inputs other than session state, in order."""
        index, is_state = self.app.endpoints[api_name]
        values = iter(args)
        data = [None if state else next(values) for state in is_state]
        joined = await self.app.http.post(self.app.url + API + "queue/join", json={
            "data": data, "fn_index": index, "session_hash": self.hash, "event_data": None, "trigger_id": None})
        event_id = joined.raise_for_status().json()["event_id"]
        async with self.app.http.stream("GET", self.app.url + API + "queue/data",
                                        params={"session_hash": self.hash}, timeout=None) as stream:
            async for line in stream.aiter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                    if not message.get("success"):
                        raise AppError((message.get("output") or {}).get("error") or "error")
                    return message["output"]["data"]
        raise AppError(f"{api_name}: the event stream ended without an answer")

    async def fetch(self, *files: dict | None) -> list[bytes]:
        """The files of an answer, fetched at once as a page does."""
        answers = await asyncio.gather(*(self.app.http.get(f["url"]) for f in files if f))
        return [a.raise_for_status().content for a in answers]
