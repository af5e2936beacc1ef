"""The bookstore example end to end: its real backend, gatewayd with the example's own
config (ports moved to free ones), and the example's client calling through the gateway."""

import json
import os
import subprocess
import unittest

import harness

BACKEND = os.path.join(harness.ROOT, "examples/bookstore/bookstore_backend")
DESCRIPTORS = os.path.join(harness.ROOT, "examples/bookstore/bookstore_proto.pb")
CONFIG = os.path.join(harness.ROOT, "examples/bookstore/gateway.yaml")
CLIENT = os.path.join(harness.ROOT, "examples/bookstore/client.py")
WEB_CLIENT = os.path.join(harness.ROOT, "tools/grpcweb/grpc_web_client.py")


class ExampleTest(unittest.TestCase):

    def test_example_config_serves_the_example_client(self):
        ws = harness.Workspace()
        try:
            backend = ws.start([BACKEND, "--listen=127.0.0.1:0"], "bookstore_backend")
            with open(CONFIG) as f:
                config = f.read()
            self.assertIn("127.0.0.1:9090", config)
            self.assertIn("127.0.0.1:50051", config)
            self.assertIn("127.0.0.1:8080", config)
            config = config.replace("127.0.0.1:9090", "127.0.0.1:0").replace(
                "127.0.0.1:8080", "127.0.0.1:0").replace(
                "127.0.0.1:50051", backend.address).replace(
                "bookstore_proto.pb", DESCRIPTORS)
            gw = ws.gatewayd(config)
            result = subprocess.run(
                ["/usr/bin/python3", CLIENT, f"--target={gw.address}",
                 f"--descriptor_set={DESCRIPTORS}"],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("ListShelves: 1 'Fiction', 2 'History'", result.stdout)
            self.assertIn("GetBook after DeleteBook: NOT_FOUND", result.stdout)
            # The same service over REST, through the example's HTTP listener.
            rest = subprocess.run(
                ["curl", "-sS", "--max-time", "20", f"http://{harness.http_address(gw)}/v1/shelves/2"],
                capture_output=True, text=True, timeout=30)
            self.assertEqual(rest.returncode, 0, rest.stderr)
            self.assertEqual(json.loads(rest.stdout), {"id": "2", "theme": "History"})
            # And over gRPC-Web, with the project's gRPC-Web client.
            web = subprocess.run(
                ["/usr/bin/python3", WEB_CLIENT, f"--address={harness.http_address(gw)}",
                 f"--descriptor_set={DESCRIPTORS}", "--method=/bookstore.v1.Bookstore/GetShelf",
                 '--json={"shelf": "2"}'], capture_output=True, text=True, timeout=30)
            self.assertEqual(web.returncode, 0, web.stderr)
            self.assertEqual(json.loads(web.stdout), {"id": "2", "theme": "History"})
            self.assertEqual(gw.stop(), 0)
        finally:
            ws.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
