"""Integration tests of the OpenAPI documents: gatewayd with the bookstore example serves
GET /openapi.json (and one document per service) generated from the routes it serves, with
the auth config's security schemes; every document passes the OpenAPI validator
(@apidevtools/swagger-parser, tools/npm); a service registered at run time through the admin
API appears in the next document; the off switch and a custom path; `gatewayctl openapi`
prints the same per-service document offline; the optional Swagger UI page (swagger-ui-dist
from tools/npm).

Real processes on loopback: gatewayd, the bookstore and echo backends, gatewayctl, node.
Every call is bounded.
"""

import http.client
import json
import os
import subprocess
import time
import unittest

import harness
import jwt_util
from registry_test import ECHO_HTTP_V1, GATEWAYCTL, Gateway

TIMEOUT = 20
BOOKSTORE = "bookstore.v1.Bookstore"
ECHO = "gateway.test.v1.Echo"
# In the runfiles (a link into the source tree, where tools/install_deps.sh put
# node_modules), or beside this file's source when run outside Bazel.
NOTES_SET = os.path.join(harness.ROOT, "gateway/openapi/testdata/openapi_test_proto.pb")
VALIDATOR = os.path.join(harness.ROOT, "tools/npm/validate_openapi.js")
if not os.path.exists(VALIDATOR):
    VALIDATOR = os.path.join(os.path.dirname(os.path.realpath(__file__)),
                             "../tools/npm/validate_openapi.js")


def get(address, path, method="GET"):
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type"), resp.read()
    finally:
        conn.close()


def npm_package(test, *path):
    """The directory of an installed package of tools/npm; fails `test` when missing."""
    directory = os.path.join(os.path.dirname(os.path.realpath(VALIDATOR)), "node_modules",
                             *path)
    if not os.path.isdir(directory):
        test.fail(f"{directory} is missing: run tools/install_deps.sh (npm ci in tools/npm)")
    return directory


def validate(test, ws, name, body):
    """Runs the OpenAPI validator on `body`; fails `test` with its message if invalid."""
    script = os.path.realpath(VALIDATOR)
    npm_package(test, "@apidevtools", "swagger-parser")
    path = ws.write(name, body.decode() if isinstance(body, bytes) else body)
    result = subprocess.run(["node", script, path], capture_output=True, text=True,
                            timeout=60)
    test.assertEqual(result.returncode, 0, f"{name} is not valid OpenAPI:\n"
                     + result.stdout + result.stderr)
    test.assertIn(f"valid: {path}", result.stdout)


def params(op):
    return [f"{p['in']}:{p['name']}" for p in op.get("parameters", [])]


class ServedDocumentTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        key = jwt_util.RsaKey("k1")
        jwks = cls.ws.write("jwks.json", jwt_util.jwks(key).decode())
        keys = cls.ws.write("api-keys.txt", f"ci-bot {jwt_util.sha256_hex('s3cret-key')}\n")
        extra = f"""
auth:
  jwt_providers:
    - {{name: corp, issuer: "https://idp.test", jwks_file: "{jwks}"}}
  api_keys: {{keys_file: "{keys}"}}
  rules:
    - {{selectors: ["{BOOKSTORE}.ListShelves"], allow_unauthenticated: true}}
    - {{selectors: ["{BOOKSTORE}.*"], providers: [corp], required_scopes: [books.read]}}
    - {{selectors: ["*"], providers: [corp, api_key]}}
"""
        bookstore = harness.bookstore_backend(cls.ws)
        echo = cls.ws.echo_backend()
        cls.gw = Gateway(cls.ws, bookstore.address, echo.address, extra=extra)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def document(self, path="/openapi.json"):
        status, content_type, body = get(self.gw.http_address, path)
        self.assertEqual(status, 200, body)
        self.assertEqual(content_type, "application/json")
        return body, json.loads(body)

    def test_document_describes_the_bookstore_routes_and_is_valid(self):
        body, doc = self.document()
        self.assertEqual(doc["openapi"], "3.1.0")
        self.assertEqual(doc["info"]["title"], "gatewayd")
        paths = doc["paths"]
        for p in ["/v1/shelves", "/v1/shelves/{shelf}", "/v1/shelves/{shelf}/books",
                  "/v1/shelves/{shelf}/books/{book}", "/v1/books/{book}",
                  "/v1/shelves/{shelf}/books/{book.id}", "/v1/shelves/{shelf}/books:stream",
                  "/v1/shelves/{shelf}/books:batchCreate"]:
            self.assertIn(p, paths)
        list_books = paths["/v1/shelves/{shelf}/books"]["get"]
        self.assertEqual(list_books["operationId"], f"{BOOKSTORE}.ListBooks")
        self.assertEqual(params(list_books),
                         ["path:shelf", "query:pageSize", "query:pageToken", "query:author"])
        self.assertEqual(list_books["parameters"][0]["schema"],
                         {"type": "string", "format": "int64"})
        # PATCH with body "book": the body is the Book, the mask comes from the query.
        update = paths["/v1/shelves/{shelf}/books/{book.id}"]["patch"]
        self.assertEqual(update["requestBody"]["content"]["application/json"]["schema"],
                         {"$ref": "#/components/schemas/bookstore.v1.Book"})
        self.assertIn("query:updateMask", params(update))
        # The server stream in its three framings; the client stream as an array or NDJSON.
        stream = paths["/v1/shelves/{shelf}/books:stream"]["get"]["responses"]["200"]
        self.assertEqual(sorted(stream["content"]),
                         ["application/json", "application/x-ndjson", "text/event-stream"])
        batch = paths["/v1/shelves/{shelf}/books:batchCreate"]["post"]["requestBody"]
        self.assertEqual(sorted(batch["content"]), ["application/json", "application/x-ndjson"])
        # Schemas in the proto3 JSON mapping.
        book = doc["components"]["schemas"]["bookstore.v1.Book"]["properties"]
        self.assertEqual(book["id"]["type"], "string")
        self.assertEqual(book["createTime"]["format"], "date-time")
        self.assertEqual(book["tags"]["type"], "array")
        self.assertEqual(book["genre"]["$ref"], "#/components/schemas/bookstore.v1.Book.Genre")
        genre = doc["components"]["schemas"]["bookstore.v1.Book.Genre"]
        self.assertIn("SCIENCE_FICTION", genre["enum"])
        self.assertEqual(sorted(doc["components"]["schemas"]["google.rpc.Status"]["properties"]),
                         ["code", "details", "message"])
        # Security from the auth rules.
        schemes = doc["components"]["securitySchemes"]
        self.assertEqual(schemes["corp"], {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT",
                                           "description": "A JWT issued by https://idp.test."})
        self.assertEqual(schemes["api_key"]["in"], "header")
        self.assertEqual(paths["/v1/shelves"]["get"]["security"], [])
        self.assertEqual(paths["/v1/shelves/{shelf}"]["get"]["security"],
                         [{"corp": ["books.read"]}])
        validate(self, self.ws, "all.json", body)

    def test_the_document_is_served_while_the_routes_need_credentials(self):
        # The documents are the gateway's own answers, not routes behind the auth rules.
        status, _, _ = get(self.gw.http_address, "/v1/shelves/1")
        self.assertEqual(status, 401)
        status, _, body = get(self.gw.http_address, "/openapi.json", method="HEAD")
        self.assertEqual(status, 200)

    def test_per_service_document_matches_gatewayctl_offline(self):
        body, doc = self.document(f"/openapi/{BOOKSTORE}.json")
        self.assertEqual(doc["info"]["title"], BOOKSTORE)
        validate(self, self.ws, "bookstore.json", body)
        config = self.ws.write("offline.yaml", self.gw.config)
        result = subprocess.run(
            [GATEWAYCTL, "openapi", BOOKSTORE, f"--descriptor-set={harness.BOOKSTORE_SET}",
             f"--config={config}"], capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.decode(), body.decode())

    def test_no_docs_page_by_default(self):
        status, _, _ = get(self.gw.http_address, "/docs/")
        self.assertEqual(status, 404)

    def test_unknown_service_is_404_with_the_error_body(self):
        status, content_type, body = get(self.gw.http_address, "/openapi/no.such.Service.json")
        self.assertEqual(status, 404)
        self.assertEqual(content_type, "application/json")
        self.assertEqual(json.loads(body),
                         {"code": 5, "message": "no service named no.such.Service is served",
                          "details": []})

    def document_once(self, predicate, what):
        """Polls the whole document (bounded) until `predicate(doc)`; meanwhile every answer
        is 200 with the previous routes' document (generated off the event loops)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            body, doc = self.document()
            if predicate(doc):
                return body, doc
            self.assertLess(time.monotonic(), deadline, f"no document {what} after {TIMEOUT}s")
            time.sleep(0.02)

    def test_a_service_registered_at_run_time_appears(self):
        status, _, _ = get(self.gw.http_address, f"/openapi/{ECHO}.json")
        self.assertEqual(status, 404)
        _, before = self.document()
        self.assertNotIn("/v1/echo", before["paths"])
        code, out = self.gw.ctl("register", ECHO, f"--descriptor-set={ECHO_HTTP_V1}",
                                "--backend=echo", "--owner=platform-test")
        self.assertEqual(code, 0, out)
        try:
            body, after = self.document_once(lambda d: "/v1/echo" in d["paths"],
                                             "with the registered service")
            self.assertIn("/v1/echo", after["paths"])
            self.assertEqual(after["paths"]["/v1/echo"]["post"]["operationId"], f"{ECHO}.Unary")
            self.assertIn(ECHO, [t["name"] for t in after["tags"]])
            self.assertEqual(after["paths"]["/v1/echo"]["post"]["security"],
                             [{"corp": []}, {"api_key": []}])
            self.assertIn("/v1/shelves", after["paths"])
            validate(self, self.ws, "registered.json", body)
            echo_body, echo_doc = self.document(f"/openapi/{ECHO}.json")
            self.assertEqual(list(echo_doc["paths"]), ["/v1/echo"])
        finally:
            code, out = self.gw.ctl("remove", ECHO, "--owner=platform-test")
            self.assertEqual(code, 0, out)
        _, removed = self.document_once(lambda d: "/v1/echo" not in d["paths"],
                                        "without the removed service")
        self.assertNotIn("/v1/echo", removed["paths"])


class SwitchesTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.bookstore = harness.bookstore_backend(self.ws)

    def gateway(self, openapi):
        config = f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends: [{{name: bookstore, target: "ipv4:{self.bookstore.address}"}}]
services: [{{name: {BOOKSTORE}, backend: bookstore}}]
http_listener: {{address: "127.0.0.1:0", openapi: {openapi}}}
"""
        return harness.http_address(self.ws.gatewayd(config))

    def test_off_switch_answers_404(self):
        address = self.gateway("{disabled: true}")
        for path in ["/openapi.json", f"/openapi/{BOOKSTORE}.json"]:
            status, _, body = get(address, path)
            self.assertEqual(status, 404, body)
        status, _, _ = get(address, "/v1/shelves")
        self.assertEqual(status, 200)

    def test_custom_paths(self):
        address = self.gateway('{path: "/api/spec.json", service_path_prefix: "/api/specs/", '
                               'title: "Books", version: "2.1"}')
        status, _, body = get(address, "/api/spec.json")
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["info"], {"title": "Books", "version": "2.1"})
        status, _, _ = get(address, f"/api/specs/{BOOKSTORE}.json")
        self.assertEqual(status, 200)
        status, _, _ = get(address, "/openapi.json")
        self.assertEqual(status, 404)

    def test_docs_page_serves_swagger_ui_from_npm(self):
        assets = npm_package(self, "swagger-ui-dist")
        address = self.gateway(f'{{docs_path: "/docs/", docs_assets_directory: "{assets}"}}')
        for path in ["/docs/", "/docs"]:
            status, content_type, page = get(address, path)
            self.assertEqual(status, 200, page)
            self.assertEqual(content_type, "text/html; charset=utf-8")
            self.assertIn(b'<script src="/docs/swagger-ui-bundle.js"></script>', page)
            self.assertIn(b'SwaggerUIBundle({url: "/openapi.json"', page)
        status, content_type, bundle = get(address, "/docs/swagger-ui-bundle.js")
        self.assertEqual(status, 200)
        self.assertEqual(content_type, "text/javascript; charset=utf-8")
        with open(os.path.join(assets, "swagger-ui-bundle.js"), "rb") as f:
            self.assertEqual(bundle, f.read())
        status, content_type, _ = get(address, "/docs/swagger-ui.css")
        self.assertEqual((status, content_type), (200, "text/css; charset=utf-8"))
        status, _, _ = get(address, "/openapi.json")
        self.assertEqual(status, 200)

    def test_bad_path_is_a_config_error_naming_the_key(self):
        path = self.ws.write("bad.yaml", f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends: [{{name: bookstore, target: "ipv4:{self.bookstore.address}"}}]
services: [{{name: {BOOKSTORE}, backend: bookstore}}]
http_listener: {{address: "127.0.0.1:0", openapi: {{path: "openapi.json"}}}}
""")
        result = subprocess.run([harness.GATEWAYD, f"--config={path}", "--check-config"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn('http_listener.openapi.path: "openapi.json" must start with "/"',
                      result.stderr)


class GatewayctlOpenApiTest(unittest.TestCase):

    def run_ctl(self, *args):
        result = subprocess.run([GATEWAYCTL, "openapi", *args], capture_output=True,
                                text=True, timeout=60)
        return result.returncode, result.stdout, result.stderr

    def test_prints_a_valid_document_of_a_descriptor_set(self):
        code, out, err = self.run_ctl(ECHO, f"--descriptor-set={ECHO_HTTP_V1}")
        self.assertEqual(code, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["info"]["title"], ECHO)
        self.assertEqual(list(doc["paths"]), ["/v1/echo"])
        self.assertEqual(doc["paths"]["/v1/echo"]["post"]["requestBody"]["content"]
                         ["application/json"]["schema"],
                         {"$ref": "#/components/schemas/gateway.test.v1.EchoRequest"})
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        validate(self, ws, "echo.json", out)

    def test_every_case_of_the_generator_is_valid_openapi(self):
        # The generator's test service: multi-segment and ** variables, maps, nested and
        # repeated query fields, HttpBody both ways, response_body, streams, Value, Any,
        # FieldMask, oneofs; with JWT (header and query), API key and mTLS schemes.
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        config = ws.write("auth.yaml", """
auth:
  jwt_providers:
    - name: corp
      issuer: https://idp.test
      jwks_file: jwks.json
      from: [{header: authorization}, {query_parameter: access_token}]
  api_keys: {keys_file: keys.txt}
  rules:
    - {selectors: ["gateway.openapi.testing.Notes.ListNotes"], allow_unauthenticated: true}
    - {selectors: ["gateway.openapi.testing.Notes.*"], providers: [corp], required_scopes: [notes.read]}
    - {selectors: ["gateway.openapi.testing.Notes.Upload"], providers: [api_key], identities: ["spiffe://prod/*"]}
""")
        code, out, err = self.run_ctl("gateway.openapi.testing.Notes",
                                      f"--descriptor-set={NOTES_SET}", f"--config={config}")
        self.assertEqual(code, 0, err)
        doc = json.loads(out)
        self.assertIn("/v1/shelves/{name_1}/notes/{name_2}", doc["paths"])
        self.assertEqual(sorted(doc["components"]["securitySchemes"]),
                         ["api_key", "corp", "corp_2", "mutual_tls"])
        self.assertEqual(doc["paths"]["/v1/files:upload"]["post"]["security"],
                         [{"api_key": [], "mutual_tls": []}])
        validate(self, ws, "notes.json", out)

    def test_errors_name_the_problem(self):
        code, _, err = self.run_ctl("no.such.Service", f"--descriptor-set={ECHO_HTTP_V1}")
        self.assertEqual(code, 2)
        self.assertIn("the descriptor set has no service named no.such.Service", err)
        code, _, err = self.run_ctl(ECHO)
        self.assertEqual(code, 2)
        self.assertIn("give one of --descriptor-set=FILE.pb", err)
        code, _, err = self.run_ctl(f"--descriptor-set={ECHO_HTTP_V1}")
        self.assertEqual(code, 2)
        self.assertIn("openapi needs one SERVICE", err)


if __name__ == "__main__":
    unittest.main()
