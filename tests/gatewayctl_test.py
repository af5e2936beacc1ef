"""Integration tests of gatewayctl as a CI job uses it: the exit codes of `diff` (0 for no
change or a compatible one, 5 for breaking changes), protos compiled with the google/api
and google/rpc files that gatewayctl carries (no --proto-path to the project's proto/), and
refusals that name the flag (--force) or the JSON field ("force": true) the caller types.

Real processes on loopback: gatewayd with an admin listener, the bookstore and echo
backends, gatewayctl; REST calls to the admin API through the gateway. Every call is bounded.
"""

import base64
import json
import os
import subprocess
import tempfile
import unittest

import harness
from registry_test import ECHO_HTTP_V1, ECHO_HTTP_V2, GATEWAYCTL, Gateway

SERVICE = "gateway.test.v1.Echo"
OWNER = "--owner=platform-test"

# A team's proto as it is written: it imports google/api protos by their usual names and
# nothing tells protoc where they are. Wire-compatible with echo_http_v1.proto, plus a
# method returning google.api.HttpBody (a compatible change against v1).
TEAM_PROTO = """syntax = "proto3";

package gateway.test.v1;

import "google/api/annotations.proto";
import "google/api/httpbody.proto";

message EchoRequest {
  bytes payload = 1;
}

message EchoResponse {
  bytes payload = 1;
  int32 index = 2;
}

service Echo {
  rpc Unary(EchoRequest) returns (EchoResponse) {
    option (google.api.http) = {
      post: "/v1/echo"
      body: "*"
    };
  }
  rpc Download(EchoRequest) returns (google.api.HttpBody) {
    option (google.api.http) = {
      get: "/v1/echo/download"
    };
  }
}
"""


class GatewayctlTest(unittest.TestCase):
    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        bookstore = harness.bookstore_backend(self.ws)
        echo = self.ws.echo_backend()
        self.token_file = self.ws.write("admin.token", "s3cret-token\n")
        self.gw = Gateway(self.ws, bookstore.address, echo.address,
                          registry_dir=os.path.join(self.ws.dir, "registry"),
                          token_file=self.token_file,
                          admin_options="expose_on_public_listeners: true")
        # A directory holding only the team's proto: no google/ folder, no proto/ path.
        self.team_dir = tempfile.mkdtemp(dir=self.ws.dir, prefix="team-")
        with open(os.path.join(self.team_dir, "echo_team.proto"), "w") as f:
            f.write(TEAM_PROTO)

    def ctl(self, *args):
        return self.gw.ctl(*args)

    def ctl_in_team_dir(self, *args):
        result = subprocess.run(
            [GATEWAYCTL, f"--admin={self.gw.admin_address}",
             f"--token-file={self.token_file}", *args],
            cwd=self.team_dir, capture_output=True, text=True, timeout=60)
        return result.returncode, result.stdout + result.stderr

    def register_v1(self):
        code, out = self.ctl("register", SERVICE, f"--descriptor-set={ECHO_HTTP_V1}",
                             "--backend=echo", OWNER)
        self.assertEqual(code, 0, out)

    def test_diff_exit_codes_gate_on_breaking_changes(self):
        # A new service: a compatible change.
        code, out = self.ctl("diff", SERVICE, f"--descriptor-set={ECHO_HTTP_V1}",
                             "--backend=echo", OWNER)
        self.assertEqual(code, 0, out)
        self.assertIn(f"dry run (the gateway was not changed): {SERVICE} would become v1", out)
        self.assertIn(f"+ service {SERVICE}", out)
        self.assertNotIn("nothing changed", out)
        self.register_v1()

        # No change.
        code, out = self.ctl("diff", SERVICE, f"--descriptor-set={ECHO_HTTP_V1}",
                             "--backend=echo", OWNER)
        self.assertEqual(code, 0, out)
        self.assertIn(f"{SERVICE}: unchanged, v1 is already served", out)

        # A compatible change: one method added.
        code, out = self.ctl_in_team_dir("diff", SERVICE, "--proto=echo_team.proto",
                                         "--backend=echo", OWNER)
        self.assertEqual(code, 0, out)
        self.assertIn(f"dry run (the gateway was not changed): {SERVICE} would become v2", out)
        self.assertIn(f"+ method /{SERVICE}/Download", out)
        self.assertIn(f"+ route GET /v1/echo/download -> {SERVICE}.Download", out)
        self.assertNotIn("breaking", out)
        self.assertNotIn("nothing changed", out)

        # A breaking change: non-zero, distinct from the other failures, and said.
        code, out = self.ctl("diff", SERVICE, f"--descriptor-set={ECHO_HTTP_V2}",
                             "--backend=echo", OWNER)
        self.assertEqual(code, 5, out)
        self.assertIn("breaking changes:\n  ! gateway.test.v1.Echo.Unary: http rule changed "
                      "POST /v1/echo body=* -> POST /v2/echo body=*", out)
        self.assertIn("gatewayctl: 1 breaking change: registering this needs --force "
                      "(exit code 5)", out)
        self.assertNotIn("nothing changed", out)
        # register --dry-run is the same question.
        code, out = self.ctl("register", SERVICE, f"--descriptor-set={ECHO_HTTP_V2}",
                             "--backend=echo", OWNER, "--dry-run")
        self.assertEqual(code, 5, out)
        # With --force the breaking change is accepted: listed, exit 0.
        code, out = self.ctl("diff", SERVICE, f"--descriptor-set={ECHO_HTTP_V2}",
                             "--backend=echo", OWNER, "--force")
        self.assertEqual(code, 0, out)
        self.assertIn("! gateway.test.v1.Echo.Unary: http rule changed", out)
        # Nothing was changed by any of the above.
        code, out = self.ctl("show", SERVICE, "--versions")
        self.assertEqual(code, 0, out)
        self.assertEqual(len(out.strip().splitlines()), 1, out)

        # The help documents the code.
        result = subprocess.run([GATEWAYCTL, "--help"], capture_output=True, text=True,
                                timeout=10)
        self.assertIn("5 breaking changes found by diff or register --dry-run", result.stdout)

    def test_team_proto_compiles_without_a_proto_path(self):
        code, out = self.ctl_in_team_dir("register", SERVICE, "--proto=echo_team.proto",
                                         "--backend=echo", OWNER, "--dry-run")
        self.assertEqual(code, 0, out)
        self.assertNotIn("File not found", out)
        self.assertIn(f"+ route GET /v1/echo/download -> {SERVICE}.Download", out)
        code, out = self.ctl_in_team_dir("register", SERVICE, "--proto=echo_team.proto",
                                         "--backend=echo", OWNER)
        self.assertEqual(code, 0, out)
        self.assertIn(f"{SERVICE}: registered v1", out)
        status, body = self.gw.rest("POST", "/v1/echo", {"payload": "aGk="})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["payload"], "aGk=")
        # The team's own -I copy of a google/api file is used before the embedded one: a
        # broken copy makes protoc fail on it.
        broken = os.path.join(self.team_dir, "mine", "google", "api")
        os.makedirs(broken)
        with open(os.path.join(broken, "httpbody.proto"), "w") as f:
            f.write("this is not a proto\n")
        code, out = self.ctl_in_team_dir("diff", SERVICE, "--proto=echo_team.proto",
                                         "--proto-path=.", "--proto-path=mine",
                                         "--backend=echo", OWNER)
        self.assertEqual(code, 2, out)
        self.assertIn("google/api/httpbody.proto", out)

    def test_refusals_name_the_force_flag_and_the_force_field(self):
        self.register_v1()
        code, out = self.ctl("register", SERVICE, f"--descriptor-set={ECHO_HTTP_V2}",
                             "--backend=echo", OWNER)
        self.assertEqual(code, 1, out)
        self.assertIn('breaking changes (to accept them: gatewayctl --force, or "force": true '
                      "in the admin API request):\n"
                      "gateway.test.v1.Echo.Unary: http rule changed", out)
        self.assertNotIn("use force", out)
        with open(ECHO_HTTP_V2, "rb") as f:
            descriptor_set = base64.b64encode(f.read()).decode()
        status, body = self.gw.rest(
            "POST", "/admin/v1/services",
            {"service": SERVICE, "descriptorSet": descriptor_set, "backend": "echo",
             "owner": "platform-test"},
            headers={"authorization": "Bearer s3cret-token"})
        self.assertEqual(status, 400, body)
        message = json.loads(body)["message"]
        self.assertIn('"force": true in the admin API request', message)
        self.assertNotIn("use force", message)
        status, body = self.gw.rest(
            "POST", "/admin/v1/services",
            {"service": SERVICE, "descriptorSet": descriptor_set, "backend": "echo",
             "owner": "platform-test", "force": True},
            headers={"authorization": "Bearer s3cret-token"})
        self.assertEqual(status, 200, body)


if __name__ == "__main__":
    unittest.main()
