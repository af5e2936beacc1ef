"""Headers that carry identity, on every front end of a live gatewayd (gRPC, REST, gRPC-Web).

- The verified JWT payload header (auth.jwt_providers[].forward_payload_header) belongs to
  the gateway: a copy sent by a client never reaches the backend, with or without a token,
  on methods open to anonymous callers and on protected ones; with a valid token the
  backend gets exactly one value, the verified payload.
- An ambiguous credential (two Authorization headers, or the API key header twice) is
  refused, naming the problem, instead of using the first one.

The echo backend reports the request metadata it received (EchoResponse.metadata).
"""

import base64
import http.client
import json
import struct
import unittest

import grpc

import harness
import jwt_util
from grpc_proxy_test import Req, Resp, Stubs, gateway_config

TIMEOUT = 10
UNARY = "/gateway.test.v1.Echo/Unary"
FORGED = "eyJzdWIiOiJhZG1pbiJ9"  # {"sub":"admin"}, what a forger would send
PAYLOAD_HEADER = "x-jwt-payload"


def auth_config(jwks_file, keys_file, unary_rule):
    return f"""
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 1
  forwarded_request_headers: [x-tenant]
  transcoding: {{expose_grpc_paths: true}}
auth:
  jwt_providers:
    - name: idp
      issuer: https://idp.test
      audiences: [bookstore]
      algorithms: [RS256]
      jwks_file: "{jwks_file}"
      forward_payload_header: X-JWT-Payload
  api_keys:
    keys_file: "{keys_file}"
  rules:
    - selectors: ["gateway.test.v1.Echo.Unary"]
      {unary_rule}
    - selectors: ["gateway.test.v1.Echo.*"]
      allow_unauthenticated: true
"""


def grpc_web_frame(message):
    data = message.SerializeToString()
    return struct.pack(">BI", 0, len(data)) + data


def parse_grpc_web(body):
    """(messages, trailers) of a binary gRPC-Web response body."""
    messages, trailers = [], {}
    while len(body) >= 5:
        flags, length = struct.unpack(">BI", body[:5])
        payload, body = body[5:5 + length], body[5 + length:]
        if flags & 0x80:
            for line in payload.decode().split("\r\n"):
                if ":" in line:
                    k, v = line.split(":", 1)
                    trailers[k.strip().lower()] = v.strip()
        else:
            messages.append(payload)
    return messages, trailers


class Gateway:
    """One gatewayd whose Unary method is protected or open, and a client per front end.
    Each call returns (status, metadata the backend saw or None, message); status is the
    gRPC code name for gRPC and gRPC-Web, the HTTP status for REST."""

    def __init__(self, ws, backend, jwks_file, keys_file, unary_rule):
        self.process = ws.gatewayd(
            gateway_config(backend.address, auth_config(jwks_file, keys_file, unary_rule)))
        self.http = harness.http_address(self.process)
        self.stubs = Stubs(self.process.address)

    def close(self):
        self.stubs.close()

    def grpc(self, headers):
        try:
            resp = self.stubs.unary(Req(payload=b"g"), timeout=TIMEOUT, metadata=headers)
            return "OK", list(resp.metadata), ""
        except grpc.RpcError as e:
            return e.code().name, None, e.details()

    def _post(self, content_type, body, headers):
        conn = http.client.HTTPConnection(*self.http.rsplit(":", 1), timeout=TIMEOUT)
        try:
            conn.putrequest("POST", UNARY)
            conn.putheader("Content-Type", content_type)
            conn.putheader("Content-Length", str(len(body)))
            for k, v in headers:  # putheader keeps repeated names as separate lines
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp, resp.read()
        finally:
            conn.close()

    def rest(self, headers):
        body = json.dumps({"payload": base64.b64encode(b"r").decode()}).encode()
        resp, data = self._post("application/json", body, headers)
        parsed = json.loads(data)
        if resp.status != 200:
            return resp.status, None, parsed.get("message", "")
        return resp.status, parsed["metadata"], ""

    def grpc_web(self, headers):
        resp, data = self._post("application/grpc-web+proto", grpc_web_frame(Req(payload=b"w")),
                                headers)
        messages, trailers = parse_grpc_web(data)
        status = resp.getheader("grpc-status") or trailers.get("grpc-status")
        message = resp.getheader("grpc-message") or trailers.get("grpc-message", "")
        name = grpc.StatusCode.OK.name
        for code in grpc.StatusCode:
            if str(code.value[0]) == status:
                name = code.name
        if status != "0":
            return name, None, message
        return name, list(Resp.FromString(messages[0]).metadata), ""

    def front_ends(self):
        return {"grpc": self.grpc, "rest": self.rest, "grpc-web": self.grpc_web}


def payload_values(metadata):
    return [m.split("=", 1)[1] for m in metadata if m.split("=", 1)[0] == PAYLOAD_HEADER]


class IdentityHeadersTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.key = jwt_util.RsaKey("k1")
        jwks_file = cls.ws.write("jwks.json", jwt_util.jwks(cls.key).decode())
        keys_file = cls.ws.write("api-keys.txt",
                                 f"ci-bot {jwt_util.sha256_hex('s3cret-key')}\n")
        cls.backend = cls.ws.echo_backend()
        cls.protected = Gateway(cls.ws, cls.backend, jwks_file, keys_file,
                                "providers: [idp, api_key]")
        cls.open = Gateway(cls.ws, cls.backend, jwks_file, keys_file,
                           "allow_unauthenticated: true")
        cls.token = cls.key.token(jwt_util.claims(sub="alice"))
        cls.verified = cls.token.split(".")[1]

    @classmethod
    def tearDownClass(cls):
        cls.protected.close()
        cls.open.close()
        cls.ws.close()

    # --- the forwarded payload header is the gateway's ---

    def test_forged_payload_never_reaches_the_backend(self):
        bearer = ("authorization", f"Bearer {self.token}")
        forged = [(PAYLOAD_HEADER, FORGED), ("X-JWT-Payload", FORGED)]
        for gateway_name, gateway in (("protected", self.protected), ("open", self.open)):
            for front_end, call in gateway.front_ends().items():
                for with_token in (True, False):
                    label = (gateway_name, front_end, "token" if with_token else "no token")
                    with self.subTest(label=label):
                        headers = ([bearer] if with_token else []) + forged
                        if front_end == "grpc":
                            headers = [(k.lower(), v) for k, v in headers]
                        status, metadata, message = call(headers)
                        if gateway_name == "protected" and not with_token:
                            self.assertIn(status, ("UNAUTHENTICATED", 401), (label, message))
                            continue
                        self.assertIn(status, ("OK", 200), (label, message))
                        values = payload_values(metadata)
                        self.assertNotIn(FORGED, values, (label, metadata))
                        if gateway_name == "protected":
                            # Exactly the verified payload, once.
                            self.assertEqual(values, [self.verified], (label, metadata))
                        else:
                            self.assertEqual(values, [], (label, metadata))

    def test_forged_payload_is_removed_when_an_api_key_authenticates(self):
        for front_end, call in self.protected.front_ends().items():
            with self.subTest(front_end=front_end):
                status, metadata, message = call([("x-api-key", "s3cret-key"),
                                                  (PAYLOAD_HEADER, FORGED)])
                self.assertIn(status, ("OK", 200), message)
                self.assertEqual(payload_values(metadata), [], metadata)

    def test_other_headers_still_pass(self):
        status, metadata, _ = self.open.grpc([("x-tenant", "acme"), ("x-any", "1")])
        self.assertEqual(status, "OK")
        self.assertIn("x-tenant=acme", metadata)
        self.assertIn("x-any=1", metadata)
        status, metadata, _ = self.open.rest([("X-Tenant", "acme")])
        self.assertEqual(status, 200)
        self.assertIn("x-tenant=acme", metadata)
        status, metadata, _ = self.open.grpc_web([("x-any", "1")])
        self.assertEqual(status, "OK")
        self.assertIn("x-any=1", metadata)

    # --- one credential per call ---

    def test_two_authorization_headers_are_refused_on_every_front_end(self):
        other = self.key.token(jwt_util.claims(sub="mallory"))
        cases = {
            "two tokens": [("authorization", f"Bearer {self.token}"),
                           ("authorization", f"Bearer {other}")],
            "token and garbage": [("authorization", f"Bearer {self.token}"),
                                  ("authorization", "Basic Zm9vOmJhcg==")],
        }
        for gateway_name, gateway in (("protected", self.protected), ("open", self.open)):
            for front_end, call in gateway.front_ends().items():
                for case, headers in cases.items():
                    label = (gateway_name, front_end, case)
                    with self.subTest(label=label):
                        status, metadata, message = call(headers)
                        self.assertIn(status, ("INVALID_ARGUMENT", 400), (label, metadata))
                        self.assertIn("two Authorization headers were sent", message)
                        self.assertNotIn(self.token, message)
        # One header still works.
        status, metadata, _ = self.protected.grpc([("authorization", f"Bearer {self.token}")])
        self.assertEqual(status, "OK")
        self.assertEqual(payload_values(metadata), [self.verified])

    def test_api_key_header_sent_twice_is_refused(self):
        for front_end, call in self.protected.front_ends().items():
            with self.subTest(front_end=front_end):
                status, _, message = call([("x-api-key", "s3cret-key"),
                                           ("x-api-key", "other-key")])
                self.assertIn(status, ("INVALID_ARGUMENT", 400), message)
                self.assertIn("header x-api-key was sent 2 times", message)
                self.assertNotIn("s3cret-key", message)
        status, _, message = self.protected.rest([("X-Api-Key", "s3cret-key")])
        self.assertEqual(status, 200, message)

    def test_www_authenticate_names_the_ambiguity_on_rest(self):
        body = json.dumps({"payload": ""}).encode()
        resp, data = self.protected._post("application/json", body,
                                          [("Authorization", "Bearer a"),
                                           ("Authorization", "Bearer b")])
        self.assertEqual(resp.status, 400, data)
        self.assertIn('error="invalid_request"', resp.getheader("www-authenticate"))

    def test_forward_payload_header_cannot_be_listed_for_forwarding(self):
        text = gateway_config(self.backend.address, auth_config(
            "jwks.json", "api-keys.txt", "allow_unauthenticated: true").replace(
                "forwarded_request_headers: [x-tenant]",
                "forwarded_request_headers: [x-tenant, X-JWT-Payload]"))
        path = self.ws.write("listed.yaml", text)
        import subprocess
        result = subprocess.run([harness.GATEWAYD, f"--config={path}", "--check-config"],
                                capture_output=True, text=True, timeout=30, cwd=self.ws.dir)
        self.assertNotEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("http_listener.forwarded_request_headers[1]", result.stderr)
        self.assertIn("is set by the gateway", result.stderr)


if __name__ == "__main__":
    unittest.main()
