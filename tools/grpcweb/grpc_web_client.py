#!/usr/bin/python3
"""A small gRPC-Web client (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md)
over HTTP/1.1, on the standard library's http.client: the binary
(application/grpc-web+proto) and text (application/grpc-web-text+proto, base64) forms,
unary and server-streaming calls, messages read as they arrive.

As a module:

    import grpc_web_client as gw
    client = gw.Client("127.0.0.1:8080")                  # text=True for grpc-web-text
    reply = client.call("/pkg.Service/Method", request_bytes, metadata={"x-id": "1"})
    reply.status, reply.message, reply.messages, reply.trailers, reply.headers
    for message in client.stream("/pkg.Service/Stream", request_bytes) ...  # as they arrive

From the command line (request as JSON or protobuf text format; the descriptor set is
`protoc --include_imports --descriptor_set_out`):

    grpc_web_client.py --address=127.0.0.1:8080 --descriptor_set=api.pb \
        --method=/bookstore.v1.Bookstore/GetShelf --json='{"shelf": 1}' [--text] \
        [--header=authorization:Bearer...] [--timeout=5s] [--tls_ca=ca.pem]

prints every response message as JSON, one per line, then "status: <code> <message>" on
stderr; the exit status is the gRPC status code.
"""

import argparse
import base64
import http.client
import ssl
import struct
import sys
import urllib.parse

MESSAGE = 0x00
TRAILER = 0x80


class ProtocolError(Exception):
    """The response does not follow the gRPC-Web protocol."""


def encode_frame(payload, flags=MESSAGE):
    """One length-prefixed frame."""
    return bytes([flags]) + struct.pack(">I", len(payload)) + payload


def encode_request(message, text=False):
    """The body of a request carrying `message` (bytes)."""
    frame = encode_frame(message)
    return base64.b64encode(frame) if text else frame


def decode_base64_chunks(data):
    """Decodes base64 made of several padded chunks (each quad decodes on its own)."""
    if len(data) % 4:
        raise ProtocolError(f"base64 length {len(data)} is not a multiple of 4")
    out, start = [], 0
    for i in range(0, len(data), 4):
        if data[i + 3:i + 4] == b"=":
            out.append(base64.b64decode(data[start:i + 4], validate=True))
            start = i + 4
    out.append(base64.b64decode(data[start:], validate=True))
    return b"".join(out)


def parse_trailers(block):
    """A trailer frame's payload ("name: value\\r\\n" lines) as a dict of lower-case names."""
    trailers = {}
    for line in block.decode("ascii", errors="replace").split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"trailer line without ':': {line!r}")
        trailers[name.strip().lower()] = value.strip()
    return trailers


class FrameReader:
    """Splits response bytes into frames as they arrive (text: base64 decoded first)."""

    def __init__(self, text=False):
        self.text = text
        self._pending_text = b""
        self._buffer = b""

    def feed(self, data):
        """Adds bytes; returns the list of (flags, payload) frames now complete."""
        if self.text:
            self._pending_text += data
            usable = len(self._pending_text) // 4 * 4
            self._buffer += decode_base64_chunks(self._pending_text[:usable])
            self._pending_text = self._pending_text[usable:]
        else:
            self._buffer += data
        frames = []
        while len(self._buffer) >= 5:
            flags = self._buffer[0]
            length = struct.unpack(">I", self._buffer[1:5])[0]
            if len(self._buffer) < 5 + length:
                break
            frames.append((flags, self._buffer[5:5 + length]))
            self._buffer = self._buffer[5 + length:]
        return frames

    def finish(self):
        """Raises ProtocolError when bytes of an incomplete frame are left over."""
        if self._buffer or self._pending_text:
            raise ProtocolError(f"{len(self._buffer) + len(self._pending_text)} bytes of an "
                                "incomplete frame at the end of the body")


class Reply:
    """The outcome of a call: HTTP status and headers, messages, gRPC status, trailers."""

    def __init__(self):
        self.http_status = 0
        self.headers = {}
        self.messages = []
        self.status = None      # int, the gRPC status code
        self.message = ""       # grpc-message, percent-decoded
        self.trailers = {}
        self.trailers_only = False

    def _set_status(self, fields):
        if "grpc-status" not in fields:
            raise ProtocolError("no grpc-status")
        self.status = int(fields["grpc-status"])
        self.message = urllib.parse.unquote(fields.get("grpc-message", ""))


class Client:
    """Calls one gateway over one keep-alive HTTP/1.1 connection (http.client)."""

    def __init__(self, address, text=False, tls_context=None, timeout=20.0,
                 server_hostname=None):
        host, port = address.rsplit(":", 1)
        self.text = text
        if tls_context is not None:
            self.conn = http.client.HTTPSConnection(server_hostname or host, int(port),
                                                    timeout=timeout, context=tls_context)
        else:
            self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def close(self):
        self.conn.close()

    def _send(self, path, body, metadata, timeout, content_type):
        kind = "application/grpc-web-text+proto" if self.text else "application/grpc-web+proto"
        headers = {"Content-Type": content_type or kind, "Accept": kind, "X-Grpc-Web": "1",
                   "X-User-Agent": "grpc-web-gateway-client/1"}
        if timeout is not None:
            headers["grpc-timeout"] = f"{max(1, int(timeout * 1000))}m"
        headers.update(metadata or {})
        self.conn.request("POST", path, body=body, headers=headers)
        return self.conn.getresponse()

    def stream(self, path, message, metadata=None, timeout=None, reply=None, raw_body=None,
               content_type=None):
        """Yields each response message (bytes) as it arrives; fills `reply` (a Reply)
        with the headers, status and trailers. `raw_body` replaces the framed `message`
        (for sending malformed bodies on purpose)."""
        reply = reply if reply is not None else Reply()
        body = raw_body if raw_body is not None else encode_request(message, self.text)
        resp = self._send(path, body, metadata, timeout, content_type)
        reply.http_status = resp.status
        reply.headers = {k.lower(): v for k, v in resp.getheaders()}
        if "grpc-status" in reply.headers:  # trailers-only
            resp.read()
            reply.trailers_only = True
            reply._set_status(reply.headers)
            return
        if resp.status != 200:
            resp.read()
            raise ProtocolError(f"HTTP status {resp.status} without grpc-status")
        reader = FrameReader(self.text)
        done = False
        while not done:
            data = resp.read1(65536)
            if not data:
                break
            for flags, payload in reader.feed(data):
                if flags & TRAILER:
                    reply.trailers = parse_trailers(payload)
                    reply._set_status(reply.trailers)
                    done = True
                elif flags == MESSAGE:
                    reply.messages.append(payload)
                    yield payload
                else:
                    raise ProtocolError(f"frame with flags 0x{flags:02x}")
        if not done:
            raise ProtocolError("the body ended without a trailer frame")
        rest = resp.read()
        if rest:
            raise ProtocolError(f"{len(rest)} bytes after the trailer frame")
        reader.finish()

    def call(self, path, message, metadata=None, timeout=None, raw_body=None,
             content_type=None):
        """Makes a call and returns its Reply (all messages read)."""
        reply = Reply()
        for _ in self.stream(path, message, metadata, timeout, reply, raw_body, content_type):
            pass
        return reply


def _parse_duration(text):
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for suffix in ("ms", "s", "m"):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * units[suffix]
    return float(text)


def main(argv=None):
    from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
    from google.protobuf import text_format

    parser = argparse.ArgumentParser(description="gRPC-Web client (HTTP/1.1)")
    parser.add_argument("--address", required=True, help="HOST:PORT of the gateway")
    parser.add_argument("--descriptor_set", required=True, help="FileDescriptorSet file")
    parser.add_argument("--method", required=True, help="/pkg.Service/Method")
    parser.add_argument("--json", help="the request as JSON")
    parser.add_argument("--text_format", help="the request in protobuf text format")
    parser.add_argument("--text", action="store_true", help="application/grpc-web-text")
    parser.add_argument("--header", action="append", default=[], help="NAME:VALUE")
    parser.add_argument("--timeout", help="deadline, e.g. 500ms, 2s")
    parser.add_argument("--tls_ca", help="CA file: call over TLS")
    parser.add_argument("--server_name", help="TLS server name (default: the host)")
    args = parser.parse_args(argv)

    fds = descriptor_pb2.FileDescriptorSet()
    try:
        with open(args.descriptor_set, "rb") as f:
            fds.ParseFromString(f.read())
    except OSError as e:
        parser.error(f"--descriptor_set: cannot read {args.descriptor_set}: {e.strerror} "
                     "(build it with protoc --include_imports --descriptor_set_out, or "
                     "bazel build the target that makes it)")
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    service, _, method_name = args.method.strip("/").partition("/")
    method = pool.FindServiceByName(service).methods_by_name[method_name]
    if hasattr(message_factory, "GetMessageClass"):
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
    else:  # protobuf before 4.22
        factory = message_factory.MessageFactory(pool)
        request_class = factory.GetPrototype(method.input_type)
        response_class = factory.GetPrototype(method.output_type)
    request = request_class()
    if args.json:
        json_format.Parse(args.json, request)
    elif args.text_format:
        text_format.Parse(args.text_format, request)

    metadata = {}
    for header in args.header:
        name, _, value = header.partition(":")
        metadata[name.strip()] = value.strip()
    context = ssl.create_default_context(cafile=args.tls_ca) if args.tls_ca else None
    client = Client(args.address, text=args.text, tls_context=context,
                    server_hostname=args.server_name)
    reply = Reply()
    try:
        for payload in client.stream(args.method, request.SerializeToString(), metadata,
                                     _parse_duration(args.timeout) if args.timeout else None,
                                     reply):
            print(json_format.MessageToJson(response_class.FromString(payload), indent=None),
                  flush=True)
    except (ProtocolError, OSError, http.client.HTTPException) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if reply.status is None else reply.status
    finally:
        client.close()
    print(f"status: {reply.status} {reply.message}".rstrip(), file=sys.stderr)
    return reply.status


if __name__ == "__main__":
    sys.exit(main())
