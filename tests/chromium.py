"""Headless Chromium for the kit's own tests, driven over the DevTools protocol.

``Browser(profile_dir, width=1280)`` starts Chromium offline (every address but 127.0.0.1 goes
to a dead proxy) with a window ``width`` CSS px wide at device scale 1, so a screenshot pixel is a
CSS pixel. ``goto(url)``, ``eval(js)`` (awaits a promise, returns JSON values), ``wait(js)``
(until it is truthy), ``shot(path, clip)`` (a PNG of a page region, in page coordinates), and
``close()``. Used as a context manager it always stops the browser it started.

``FIGURE_JS`` measures an inline space-time SVG as it is drawn: every text's box and font size
in px, every operation's box and outline colour, and what the pointer would rest on at each
operation's centre (its ``<title>``).
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from splitbrain.testing import require


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or \
        shutil.which("google-chrome")
    require(found is not None, "chromium is not installed (apt-get install chromium "
                               "chromium-driver)")
    return found  # type: ignore[return-value]


class Browser:
    def __init__(self, profile: Path, width: int = 1280, height: int = 900) -> None:
        import websocket  # websocket-client, which jupyter_server depends on
        self.proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={profile}", "--no-first-run", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-crash-reporter", "--disable-breakpad",
             "--force-color-profile=srgb", "--proxy-server=127.0.0.1:9",
             "--proxy-bypass-list=127.0.0.1", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:             # keep reading stderr, or Chromium blocks on a full pipe
            for line in self.proc.stderr:  # type: ignore[union-attr]
                lines.put(line)
        threading.Thread(target=pump, daemon=True).start()
        port, said = None, []
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            said.append(line)
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = int(m.group(1)) if m else None
        if port is None:
            self.close()
            raise RuntimeError("chromium did not start:\n" + "".join(said[-20:]))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(p for p in json.load(r) if p["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60,
                                              suppress_origin=True)
        self.ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params: Any) -> dict:
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, js: str) -> Any:
        r = self.call("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"javascript failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, js: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(js)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.2)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete' && location.href !== 'about:blank'")

    def shot(self, path: Path, clip: dict[str, float] | None = None) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        data = self.call("Page.captureScreenshot", **params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)   # the group this Browser started
                    self.proc.wait(10)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# What a reader sees of an inline space-time SVG (``svg`` in scope): boxes relative to the SVG's
# top left corner, in CSS px as drawn.
FIGURE_JS = r"""
  const b0 = svg.getBoundingClientRect();
  const rel = bb => ({x: bb.left - b0.left, y: bb.top - b0.top, w: bb.width, h: bb.height});
  const texts = [];
  for (const g of svg.querySelectorAll('g[id^="text_"]')) {
    const inner = g.querySelector('g[transform]');
    const bb = g.getBoundingClientRect();
    if (!inner || bb.width === 0) continue;
    const m = inner.getScreenCTM();   // glyphs are drawn 100 units to the em
    const c = [...g.childNodes].find(n => n.nodeType === Node.COMMENT_NODE);
    texts.push({text: c ? c.data.trim() : '', px: 100 * Math.hypot(m.a, m.b), ...rel(bb)});
  }
  const ops = [];
  for (const g of svg.querySelectorAll('g[id^="sb-op-"], g[id^="sb-grp-"]')) {
    const p = g.querySelector(':scope > path');
    const bb = p.getBoundingClientRect();
    const hit = document.elementFromPoint(bb.left + bb.width / 2, bb.top + bb.height / 2);
    const owner = hit && hit.closest('g[id^="sb-"]');
    const title = owner && owner.querySelector(':scope > title');
    ops.push({id: g.id, stroke: getComputedStyle(p).stroke, hover: owner ? owner.id : null,
              title: title ? title.textContent : null, ...rel(bb)});
  }
  return {box: {x: b0.left + scrollX, y: b0.top + scrollY, w: b0.width, h: b0.height},
          texts, ops};
"""
