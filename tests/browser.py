"""The real consumers that run in a browser: Debian's chromium driven by Playwright, and the
npm packages of tests/js (mermaid, speedscope), installed with ``npm ci`` on first use.
Pages are served from a folder by a real HTTP server on 127.0.0.1. Imported by tests;
holds no tests."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PACKAGES = Path(__file__).parent / "js"
CHROMIUM = "chromium"  # Debian's: apt-get install chromium


@functools.cache
def node_modules() -> Path:
    """tests/js/node_modules, as package-lock.json pins it."""
    found = PACKAGES / "node_modules"
    if not (found / ".package-lock.json").is_file():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=PACKAGES,
                       check=True, timeout=600)
    return found


@contextmanager
def served(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1; yields its base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def page() -> Iterator[Any]:
    """A page of headless chromium (the system's), downloads allowed."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which(CHROMIUM)
    assert executable, "the browser tests need Debian's chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=["--no-sandbox"])
        try:
            yield browser.new_page(accept_downloads=True)
        finally:
            browser.close()


def speedscope_import(folder: Path, name: str) -> dict[str, Any]:
    """Open ``folder/name`` in speedscope's own app (its importers decide the format) and
    return what speedscope exported of it: its file format, frames and events or samples."""
    release = node_modules() / "speedscope" / "dist" / "release"
    shutil.copytree(release, folder / "speedscope", dirs_exist_ok=True)
    shutil.copy(folder / name, folder / "speedscope" / name)
    with served(folder / "speedscope") as url, page() as tab:
        messages: list[str] = []
        tab.on("console", lambda message: messages.append(message.text))
        tab.goto(f"{url}/index.html#profileURL={url}/{name}")
        tab.get_by_text("Export").wait_for(timeout=30_000)
        with tab.expect_download(timeout=30_000) as download:
            tab.get_by_text("Export").click()
        exported: dict[str, Any] = json.loads(Path(download.value.path()).read_text())
    exported["console"] = messages
    return exported


def frame_totals(exported: dict[str, Any]) -> dict[str, float]:
    """The total of each stack in speedscope's export, keyed by the names of its frames
    from the root down, as speedscope named them (``a;b;c``): the time between each frame's
    open and close events (an evented profile), or the weight of the samples under it (a
    sampled one)."""
    names = [frame["name"] for frame in exported["shared"]["frames"]]
    (found,) = exported["profiles"]
    totals: dict[str, float] = defaultdict(float)
    if found["type"] == "evented":
        stack: list[tuple[str, float]] = []
        for event in found["events"]:
            if event["type"] == "O":
                stack.append((names[event["frame"]], event["at"]))
            else:
                key = ";".join(name for name, _ in stack)
                totals[key] += event["at"] - stack.pop()[1]
    else:
        for frames, weight in zip(found["samples"], found["weights"], strict=True):
            for depth in range(1, len(frames) + 1):
                totals[";".join(names[frame] for frame in frames[:depth])] += weight
    return dict(totals)


def mermaid_svg(chart: str) -> str:
    """The SVG the real mermaid library renders of ``chart`` (the text inside a
    ``mermaid`` fence) in chromium; a chart it cannot parse raises."""
    from playwright.sync_api import Error

    library = node_modules() / "mermaid" / "dist"
    with served(library) as url, page() as tab:
        tab.set_content(f'<html><body><script src="{url}/mermaid.min.js"></script></body>'
                        "</html>")
        tab.wait_for_function("window.mermaid !== undefined", timeout=30_000)
        try:
            svg: str = tab.evaluate(
                """async (text) => {
                    mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
                    const {svg} = await mermaid.render("chart", text);
                    return svg;
                }""", chart)
        except Error as exc:
            raise ValueError(f"mermaid cannot render it: {exc.message}") from exc
    return svg
