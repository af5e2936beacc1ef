"""CORS preflights of REST paths on gatewayd's HTTP listener, with a minimal cors config.

Real processes on loopback: the bookstore example backend, gatewayd, and curl as the
client. A browser's preflight before a JSON POST lists content-type; the gateway allows it
and the other CORS-safelisted request headers without configuration, and a refusal (403)
says which part was refused. Every call is bounded in time.
"""

import json
import subprocess
import unittest

import harness

TIMEOUT = 20


def config(bookstore):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends:
  - {{name: bookstore, target: "ipv4:{bookstore}"}}
services:
  - {{name: bookstore.v1.Bookstore, backend: bookstore}}
runtime: {{shutdown_grace: 5s, worker_threads: 1}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 1
  cors:
    allowed_origins: ["https://app.example.com"]
    allowed_methods: [GET, POST]
"""


class CorsPreflightTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.gateway = cls.ws.gatewayd(config(cls.bookstore.address))
        cls.url = f"http://{harness.http_address(cls.gateway)}/v1/shelves"

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def preflight(self, origin, method, headers=None):
        """curl's OPTIONS preflight; returns (status, {lower-case header: value}, body)."""
        argv = ["curl", "-sS", "--max-time", str(TIMEOUT), "-X", "OPTIONS", "-D", "-",
                "-H", f"Origin: {origin}", "-H", f"Access-Control-Request-Method: {method}"]
        if headers is not None:
            argv += ["-H", f"Access-Control-Request-Headers: {headers}"]
        out = subprocess.run(argv + [self.url], capture_output=True, timeout=TIMEOUT + 5)
        self.assertEqual(out.returncode, 0, out.stderr)
        head, _, body = out.stdout.decode().partition("\r\n\r\n")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return status, fields, body

    def test_json_post_preflight_is_allowed_without_configured_headers(self):
        status, fields, body = self.preflight("https://app.example.com", "POST",
                                              "content-type")
        self.assertEqual(status, 204, body)
        self.assertEqual(fields["access-control-allow-origin"], "https://app.example.com")
        allowed = {h.strip() for h in fields["access-control-allow-headers"].split(",")}
        self.assertEqual(allowed, {"accept", "accept-language", "content-language",
                                   "content-type", "range"})
        status, _, body = self.preflight("https://app.example.com", "GET",
                                         "Accept, Accept-Language, Range")
        self.assertEqual(status, 204, body)

    def test_refusal_says_what_was_refused(self):
        cases = [
            (("https://evil.example.net", "GET", None),
             'CORS preflight refused: origin "https://evil.example.net" is not allowed'),
            (("https://app.example.com", "DELETE", None),
             'CORS preflight refused: method "DELETE" is not allowed (allowed: GET, POST)'),
            (("https://app.example.com", "POST", "content-type, authorization"),
             'CORS preflight refused: header "authorization" is not allowed'),
        ]
        for args, message in cases:
            status, fields, body = self.preflight(*args)
            self.assertEqual(status, 403, (args, body))
            self.assertNotIn("access-control-allow-origin", fields)
            error = json.loads(body)
            self.assertEqual(error["code"], 7)
            self.assertIn(message, error["message"])


if __name__ == "__main__":
    unittest.main()
