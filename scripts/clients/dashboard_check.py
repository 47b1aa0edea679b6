#!/usr/bin/env python3
"""Opens spotq's dashboard in headless Chromium (Debian's package), like an operator would:
types the admin token, waits for live numbers, optionally clicks Replay on a dead letter and
waits for the page to say it was replayed. Prints what the page showed as JSON.

Drives Chromium over its DevTools protocol (websocket-client from PyPI); no Selenium.

usage: dashboard_check.py URL TOKEN [--replay ID] [--timeout SECONDS]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("dashboard_check: no chromium found (apt-get install chromium)")


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("--replay", type=int)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()

    profile = tempfile.mkdtemp(prefix="spotq-chromium-")
    port_file = os.path.join(profile, "DevToolsActivePort")
    browser = subprocess.Popen(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + args.timeout
        while not os.path.exists(port_file) and time.time() < deadline:
            time.sleep(0.1)
        if not os.path.exists(port_file):
            raise RuntimeError("chromium did not open its DevTools port")
        # Chromium may write the port file a moment before it accepts connections.
        targets = None
        while targets is None:
            try:
                with open(port_file) as handle:
                    port = handle.readline().strip()
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
            except (OSError, ValueError):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Page.navigate", url=args.url)
        page.wait_for("document.readyState === 'complete' && !!document.getElementById('token-form')", args.timeout, "the page")
        # Type the token and submit, as a person would.
        page.evaluate(f"document.getElementById('token').value = {json.dumps(args.token)}; "
                      "document.getElementById('token-form').requestSubmit(); true")
        page.wait_for("document.body.getAttribute('data-loaded') === 'true'", args.timeout, "live numbers")
        shown = page.evaluate("""(() => {
            const value = id => { const c = document.getElementById(id); return c ? c.querySelector('.value').textContent : null; };
            return {
              done: value('card-done'), waiting: value('card-waiting'), pods: value('card-pods'), dead_letters: value('card-dead'),
              usd_per_hour: value('card-usd-hour'), batches_rows: document.querySelectorAll('#batches tr').length - 1,
              dead_letter_ids: [...document.querySelectorAll('[data-replay]')].map(b => b.getAttribute('data-replay')),
              plot_lines: document.querySelectorAll('#plot polyline').length,
              injected_elements: document.querySelectorAll('#dead-letters img, #dead-letters script').length,
              pods_rows: [...document.querySelectorAll('#pods tr')].slice(1).map(r => [...r.children].map(c => c.textContent).join(' | ')),
              status: document.getElementById('status').textContent
            };
        })()""")
        if args.replay is not None:
            page.evaluate(f"document.querySelector('[data-replay=\"{args.replay}\"]').click(); true")
            shown["replay"] = page.wait_for(
                f"(() => {{ const s = document.querySelector('[data-replay-status=\"{args.replay}\"]'); "
                "return s && s.textContent && s.textContent !== 'replaying…' ? s.textContent : null; })()",
                args.timeout, "the replay's answer")
        print(json.dumps(shown))
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # a clear message for the Swift test's log
        print(json.dumps({"error": str(error)}))
        sys.exit(1)
