"""A real browser calls the gateway across origins.

Debian's chromium runs headless (through chromium-driver and python3-selenium) and loads a
small page (tests/browser/index.html and main.js, bundled at test time with esbuild from
tools/npm) served by Python's http.server on one loopback port; the gateway listens on
another, with a CORS policy that allows the page's origin. The page calls the gateway from
JavaScript: REST with fetch (the bookstore example's routes: a preflighted JSON POST, a
preflight the policy refuses, an NDJSON server stream), gRPC-Web with the grpc-web npm
client (unary, server streaming), Connect with @connectrpc/connect-web (unary JSON and
binary with their preflights, an error, a GET, a server stream; types from the echo
descriptor set, which the page server serves beside the page), and a WebSocket bidi stream
(messages, a normal close; an error's close code and reason). The test reads what the page
reports (window.results) and the gateway's access log.

Skipped, saying why, only when the browser cannot start at all. Every wait is bounded.
"""

import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import harness

TIMEOUT = 30
HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "browser")
# tools/npm/node_modules (installed by tools/install_deps.sh) beside the real path of
# package.json: a link into the source tree under Bazel, the source itself outside it.
PACKAGE_JSON = os.path.join(harness.ROOT, "tools/npm/package.json")
if not os.path.exists(PACKAGE_JSON):
    PACKAGE_JSON = os.path.join(HERE, "../tools/npm/package.json")
NODE_MODULES = os.path.join(os.path.dirname(os.path.realpath(PACKAGE_JSON)), "node_modules")


def bundle(out_dir):
    """Bundles tests/browser/main.js with esbuild into out_dir/bundle.js; copies the page."""
    esbuild = os.path.join(NODE_MODULES, ".bin", "esbuild")
    if not os.path.exists(esbuild):
        raise AssertionError(f"{esbuild} is missing: run tools/install_deps.sh "
                             "(npm ci in tools/npm)")
    result = subprocess.run(
        [esbuild, os.path.join(BROWSER_DIR, "main.js"), "--bundle", "--format=iife",
         "--target=es2020", f"--outfile={os.path.join(out_dir, 'bundle.js')}"],
        env={**os.environ, "NODE_PATH": NODE_MODULES}, capture_output=True, text=True,
        timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"esbuild failed:\n{result.stderr}")
    shutil.copy(os.path.join(BROWSER_DIR, "index.html"), out_dir)
    # The Connect client builds its message types from this at run time.
    shutil.copy(harness.ECHO_SET, os.path.join(out_dir, "echo_proto.pb"))


def start_page_server(directory):
    """http.server on 127.0.0.1:0 serving `directory`; returns (server, port)."""
    handler = functools.partial(_QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def start_browser(user_data_dir):
    """Headless chromium through chromedriver; raises unittest.SkipTest if it cannot start."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise unittest.SkipTest(f"python3-selenium is not installed: {e}")
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise unittest.SkipTest("chromium or chromium-driver is not installed "
                                "(tools/install_deps.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", f"--user-data-dir={user_data_dir}"]:
        options.add_argument(arg)
    try:
        browser = webdriver.Chrome(service=Service(driver), options=options)
    except Exception as e:  # the browser could not start at all
        raise unittest.SkipTest(f"chromium could not start: {e}")
    browser.set_script_timeout(TIMEOUT)
    browser.set_page_load_timeout(TIMEOUT)
    return browser


class BrowserTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        try:
            cls.page_dir = os.path.join(cls.ws.dir, "page")
            os.mkdir(cls.page_dir)
            bundle(cls.page_dir)
            cls.page_server, page_port = start_page_server(cls.page_dir)
            cls.origin = f"http://127.0.0.1:{page_port}"
            cls.access_log = os.path.join(cls.ws.dir, "access.log")
            cls.echo = cls.ws.echo_backend()
            cls.bookstore = harness.bookstore_backend(cls.ws)
            cls.gateway = cls.ws.gatewayd(f"""
descriptor_sets: ["{harness.ECHO_SET}", "{harness.BOOKSTORE_SET}"]
backends:
  - {{name: echo, target: "ipv4:{cls.echo.address}"}}
  - {{name: bookstore, target: "ipv4:{cls.bookstore.address}"}}
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
  - {{name: bookstore.v1.Bookstore, backend: bookstore}}
access_log: {{path: "{cls.access_log}", format: JSON}}
http_listener:
  address: "127.0.0.1:0"
  transcoding: {{expose_grpc_paths: true}}  # the WebSocket route of Echo.Bidi
  cors:
    allowed_origins: ["{cls.origin}"]
    allowed_methods: [GET, POST]
    allowed_headers: [x-echo-test, x-echo-color]
    exposed_headers: [x-reflect-color, trailer-x-echo-trailing]
""")
            cls.gateway_url = "http://" + harness.http_address(cls.gateway)
            cls.browser = start_browser(tempfile.mkdtemp(dir=cls.ws.dir, prefix="chromium-"))
        except BaseException:
            cls.ws.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        cls.page_server.shutdown()
        cls.ws.close()

    def test_page_calls_the_gateway_across_origins(self):
        self.browser.get(f"{self.origin}/index.html?gateway={self.gateway_url}")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.browser.execute_script("return window.done === true"):
                break
            time.sleep(0.1)
        results = self.browser.execute_script("return window.results")
        shown = self.browser.find_element("id", "results").text
        self.assertTrue(self.browser.execute_script("return window.done === true"),
                        f"the page did not finish in {TIMEOUT}s: {shown}")
        report = json.dumps(results, indent=1)

        self.assertEqual(results["restCreateShelf"], {"status": 200, "theme": "browser"},
                         report)
        self.assertEqual(results["restRefusedPreflight"].get("refused"), True, report)
        self.assertEqual(results["restServerStream"],
                         {"status": 200, "titles": ["First", "Second"]}, report)
        self.assertEqual(results["grpcWebUnary"], {"payload": "grpc-web"}, report)
        self.assertEqual(results["grpcWebServerStream"],
                         {"indexes": [0, 1, 2, 3], "status": 0}, report)
        self.assertEqual(results["connectUnaryJson"],
                         {"payload": "connect-json", "deadlineSet": True, "reflected": "blue",
                          "trailer": "done"}, report)
        self.assertEqual(results["connectUnaryBinary"], {"payload": "connect-binary"}, report)
        self.assertEqual(results["connectUnaryError"],
                         {"code": "NotFound", "message": "not here"}, report)
        self.assertEqual(results["connectGet"], {"finished": False, "calls": 0}, report)
        self.assertEqual(results["connectServerStream"],
                         {"got": [["cs", 0], ["cs", 1], ["cs", 2]]}, report)
        self.assertEqual(results["webSocketBidi"],
                         {"messages": ["one", "two", "three"], "code": 1000, "reason": ""},
                         report)
        error = results["webSocketError"]
        self.assertEqual(error["code"], 4005, report)
        self.assertEqual(error["reason"], "not here", report)
        self.assertEqual(error["last"]["code"], 5, report)

        # The gateway saw the preflights and the WebSocket calls (the log is written by its
        # own thread: wait for the lines, bounded).
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline:
            with open(self.access_log) as f:
                lines = [json.loads(line) for line in f if line.strip()]
            if sum(1 for r in lines if r["front_end"] == "websocket") >= 2:
                break
            time.sleep(0.1)
        self.assertTrue(any(r["method"] == "OPTIONS" and r["status"] == 204 for r in lines),
                        lines)
        self.assertTrue(any(r["method"] == "OPTIONS" and r["status"] == 403 for r in lines),
                        lines)
        # The Connect calls went through as Connect (POSTs preflighted on their method path).
        connect = [r for r in lines if r["front_end"] == "connect"]
        self.assertEqual(sorted((r["method"], r["status"]) for r in connect),
                         [("GET", 200), ("POST", 200), ("POST", 200), ("POST", 200),
                          ("POST", 404)], connect)
        self.assertTrue(any(r["method"] == "OPTIONS" and r["status"] == 204 and
                            r["path"] == "/gateway.test.v1.Echo/Unary" for r in lines), lines)
        sockets = [r for r in lines if r["front_end"] == "websocket"]
        self.assertEqual(sorted(r["grpc_status"] for r in sockets), [0, 5], sockets)
        self.assertTrue(all(r["status"] == 101 for r in sockets), sockets)


if __name__ == "__main__":
    unittest.main()
