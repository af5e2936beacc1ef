"""One interceptor chain for both front ends: the same auth, quota and deadline rules give
the same outcome to a REST call and a gRPC call of the same method, and a quota counts the
calls of both together."""

import http.client
import json
import time
import unittest

import grpc

import harness
import jwt_util

MSGS = harness.load_messages(harness.BOOKSTORE_SET)
GetShelf = MSGS["bookstore.v1.GetShelfRequest"]
Shelf = MSGS["bookstore.v1.Shelf"]
TIMEOUT = 20


class SameRulesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.key = jwt_util.RsaKey("k1")
        jwks_file = cls.ws.write("jwks.json", jwt_util.jwks(cls.key).decode())
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.gateway = cls.ws.gatewayd(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends: [{{name: bookstore, target: "ipv4:{cls.bookstore.address}"}}]
services: [{{name: bookstore.v1.Bookstore, backend: bookstore}}]
auth:
  jwt_providers:
    - {{name: idp, issuer: "https://idp.test", audiences: [bookstore], jwks_file: "{jwks_file}"}}
  rules:
    - {{selectors: ["bookstore.v1.Bookstore.*"], providers: [idp]}}
    - {{selectors: ["bookstore.v1.Bookstore.ListShelves"], allow_unauthenticated: true}}
quotas:
  rules:
    - {{name: shelf-reads, selectors: ["bookstore.v1.Bookstore.GetShelf"], requests: 4, per: 1h}}
""")
        cls.http_address = harness.http_address(cls.gateway)
        cls.channel = grpc.insecure_channel(cls.gateway.address)
        cls.get_shelf = cls.channel.unary_unary(
            "/bookstore.v1.Bookstore/GetShelf", request_serializer=GetShelf.SerializeToString,
            response_deserializer=Shelf.FromString)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.ws.close()

    def rest(self, path, token=None):
        host, port = self.http_address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp, (json.loads(body) if body else None)

    def grpc(self, token=None):
        metadata = [("authorization", f"Bearer {token}")] if token else []
        try:
            return grpc.StatusCode.OK, self.get_shelf(GetShelf(shelf=1), timeout=TIMEOUT,
                                                      metadata=metadata)
        except grpc.RpcError as e:
            return e.code(), e

    def test_missing_and_invalid_tokens_are_refused_on_both(self):
        resp, body = self.rest("/v1/shelves/1")
        self.assertEqual(resp.status, 401, body)
        self.assertIn('Bearer realm="gateway"', resp.getheader("WWW-Authenticate"))
        self.assertEqual(body["code"], 16)
        self.assertIn("missing credentials", body["message"])
        code, err = self.grpc()
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("missing credentials", err.details())

        expired = self.key.token(jwt_util.claims(sub="x", ttl=-600))
        resp, body = self.rest("/v1/shelves/1", expired)
        self.assertEqual(resp.status, 401)
        self.assertIn("token expired", body["message"])
        code, err = self.grpc(expired)
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("token expired", err.details())

    def test_open_method_needs_no_token_on_either(self):
        resp, body = self.rest("/v1/shelves")
        self.assertEqual(resp.status, 200, body)

    def test_one_quota_counts_rest_and_grpc_calls_together(self):
        token = self.key.token(jwt_util.claims(sub="quota-user"))
        outcomes = []
        for i in range(3):
            resp, _ = self.rest("/v1/shelves/1", token)
            outcomes.append(resp.status)
            outcomes.append(self.grpc(token)[0])
        self.assertEqual(outcomes, [200, grpc.StatusCode.OK, 200, grpc.StatusCode.OK, 429,
                                    grpc.StatusCode.RESOURCE_EXHAUSTED])
        resp, body = self.rest("/v1/shelves/1", token)
        self.assertEqual(resp.status, 429)
        self.assertIsNotNone(resp.getheader("Retry-After"))
        self.assertIn('quota "shelf-reads" exceeded', body["message"])
        # Another caller has its own bucket, on both front ends.
        other = self.key.token(jwt_util.claims(sub="someone-else"))
        self.assertEqual(self.rest("/v1/shelves/1", other)[0].status, 200)
        self.assertEqual(self.grpc(other)[0], grpc.StatusCode.OK)


if __name__ == "__main__":
    unittest.main(verbosity=2)
