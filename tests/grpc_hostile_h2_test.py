"""Hostile HTTP/2 clients on the gRPC listener of a live gatewayd.

Raw frames over plain sockets (frames built here, header blocks with python3-hpack) against
the grpc_listener: a CONTINUATION flood, an HPACK bomb, SETTINGS and PING floods without
reading the acknowledgements, rapid reset, WINDOW_UPDATE overflows, a 4 GiB declared message
length, and a message that declares 1 MB, sends 10 bytes and stalls. Each attack is bounded
in time and bytes; after each (and, for the floods, while it runs) the gateway process is
alive, its resident memory has not grown by more than RSS_GROWTH_MIB, and a normal grpcio
call on another connection is served.
"""

import socket
import struct
import threading
import time
import unittest

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

import harness
from grpc_proxy_test import Req, Resp, Stubs, rss_kib

TIMEOUT = 10  # seconds; the bound of any single exchange below
RSS_GROWTH_MIB = 64
UNARY = b"/gateway.test.v1.Echo/Unary"
MAX_MESSAGE_BYTES = 16777216  # the default of limits.max_message_bytes

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, CANCEL = 0x0, 0x2, 0x3, 0x8
OK, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED = "0", "4", "8"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream) + payload


def grpc_frame(payload, declared=None):
    """A gRPC message frame; `declared` overrides the length in its 5-byte prefix."""
    return struct.pack(">BI", 0, len(payload) if declared is None else declared) + payload


def grpc_request_headers(extra=()):
    return [(b":method", b"POST"), (b":scheme", b"http"), (b":path", UNARY),
            (b":authority", b"gateway"), (b"content-type", b"application/grpc"),
            (b"te", b"trailers"), *extra]


class Frame:
    def __init__(self, kind, flags, stream, payload):
        self.kind, self.flags, self.stream, self.payload = kind, flags, stream, payload
        self.headers = None  # decoded, for HEADERS

    def error_code(self):
        """RST_STREAM's code, or GOAWAY's."""
        if self.kind == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.kind == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        return None

    def __repr__(self):
        return f"Frame(type={self.kind}, flags={self.flags}, stream={self.stream}, " \
               f"len={len(self.payload)}, headers={self.headers})"


class RawH2:
    """One h2c connection driven frame by frame; never validates what it sends."""

    def __init__(self, address, settings=b"", rcvbuf=None):
        host, port = address.rsplit(":", 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # a small window: the server's writes back up sooner
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((host, int(port)))
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self.buffer = b""
        self.frames = []
        self.closed = False  # EOF or a reset seen
        self.sent = 0
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings))

    def close(self):
        self.sock.close()

    def send(self, data):
        """Sends `data`; False once the server has closed the connection."""
        try:
            self.sock.sendall(data)
            self.sent += len(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
            return False
        except socket.timeout:
            return False

    def block(self, headers):
        return self.encoder.encode(headers)

    def request(self, stream, headers, body=None, end_stream=False):
        flags = END_HEADERS | (END_STREAM if end_stream and body is None else 0)
        data = frame(HEADERS, flags, stream, self.block(headers))
        if body is not None:
            data += frame(DATA, END_STREAM if end_stream else 0, stream, body)
        return self.send(data)

    def read_until(self, predicate, limit=TIMEOUT, ack=True):
        """Reads frames until one satisfies `predicate` (returned), the connection ends or
        `limit` seconds pass (None). Acknowledges the server's SETTINGS when `ack`."""
        deadline = time.monotonic() + limit
        while True:
            while len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) < 9 + length:
                    break
                kind, flags, stream = struct.unpack(">BBI", self.buffer[3:9])
                f = Frame(kind, flags, stream & 0x7FFFFFFF, self.buffer[9:9 + length])
                self.buffer = self.buffer[9 + length:]
                if kind == HEADERS:
                    block = f.payload
                    if flags & 0x8:  # PADDED
                        block = block[1:len(block) - block[0]]
                    if flags & 0x20:  # PRIORITY
                        block = block[5:]
                    f.headers = {k.decode(): v.decode()
                                 for k, v in self.decoder.decode(block, raw=True)}
                if kind == SETTINGS and not flags & ACK and ack:
                    self.send(frame(SETTINGS, ACK, 0))
                self.frames.append(f)
                if predicate(f):
                    return f
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(min(left, 1.0))
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except ConnectionResetError:
                self.closed = True
                continue
            if not chunk:
                self.closed = True
                continue
            self.buffer += chunk

    def read_to_end(self, limit=TIMEOUT):
        """Reads until the server closes the connection; True if it did within `limit`."""
        self.read_until(lambda f: False, limit)
        return self.closed

    def of_kind(self, kind, stream=None):
        return [f for f in self.frames if f.kind == kind and (stream is None or f.stream == stream)]

    def grpc_status(self, stream):
        """(grpc-status, grpc-message) of `stream` from the headers/trailers read so far."""
        fields = {}
        for f in self.of_kind(HEADERS, stream):
            fields.update(f.headers)
        return fields.get("grpc-status"), fields.get("grpc-message", "")


def ended(stream):
    """A predicate: `stream` ended (END_STREAM or reset) or the connection was refused."""
    return lambda f: ((f.stream == stream and (f.flags & END_STREAM and f.kind in (HEADERS, DATA)
                                               or f.kind == RST_STREAM))
                      or f.kind == GOAWAY)


class GrpcHostileH2Test(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - name: echo
    target: "ipv4:{cls.backend.address}"
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
runtime: {{shutdown_grace: 5s, worker_threads: 2}}
""", memory_measured=True)
        cls.address = cls.gateway.address
        cls.call_ok(cls.address, b"warm up")
        cls.baseline_kib = rss_kib(cls.gateway.proc.pid)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    @staticmethod
    def call_ok(address, payload):
        stubs = Stubs(address)
        try:
            return stubs.unary(Req(payload=payload), timeout=TIMEOUT).payload == payload
        finally:
            stubs.close()

    def assert_healthy(self):
        """Alive, memory bounded, and a normal call on a new connection is served."""
        self.assertTrue(self.gateway.alive(), self.gateway.output()[-3000:])
        growth_mib = (rss_kib(self.gateway.proc.pid) - self.baseline_kib) / 1024
        self.assertLess(growth_mib, RSS_GROWTH_MIB, f"gateway grew by {growth_mib:.0f} MiB")
        self.assertTrue(self.call_ok(self.address, b"still served"))

    def served_during(self, attack):
        """Runs `attack()` in a thread while normal calls are made on other connections (at
        least one: an attack the gateway ends within milliseconds may be over before the
        first call starts); returns the attack's result once both are done (bounded)."""
        result = {}

        def run():
            result["value"] = attack()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        served = 0
        while served < 20 and (served == 0 or thread.is_alive()):
            self.assertTrue(self.call_ok(self.address, b"during the attack"))
            served += 1
        thread.join(3 * TIMEOUT)
        self.assertFalse(thread.is_alive(), "the attack did not end in time")
        self.assertGreater(served, 0)
        return result["value"]

    # --- the attacks ---

    def test_continuation_flood_closes_the_connection(self):
        # HEADERS without END_HEADERS, then CONTINUATION frames without end (each a valid
        # literal header field): the gateway must stop reading after a bounded number of them
        # and close the connection, never buffering the block.
        def attack():
            conn = RawH2(self.address)
            try:
                conn.send(frame(HEADERS, 0, 1, conn.block(grpc_request_headers())))
                field = b"\x00\x03x-c\x7f\xe9\x06" + b"v" * 1000  # literal, 1000-byte value
                chunk = frame(CONTINUATION, 0, 1, field) * 64
                deadline = time.monotonic() + TIMEOUT
                while conn.sent < (64 << 20) and time.monotonic() < deadline:
                    if not conn.send(chunk):
                        break
                closed = conn.read_to_end()
                return closed, conn.sent, conn.frames
            finally:
                conn.close()

        closed, sent, frames = self.served_during(attack)
        self.assertTrue(closed, f"connection still open after {sent} bytes: {frames[-5:]}")
        self.assertLess(sent, 64 << 20, "the gateway kept reading CONTINUATION frames")
        # No response for the flooded stream ever started.
        self.assertFalse([f for f in frames if f.kind == HEADERS], frames)
        self.assert_healthy()

    def test_hpack_bomb_is_refused_with_the_header_limit(self):
        # One 4000-byte field inserted into the dynamic table, then referenced by one-byte
        # indexed fields 12000 times: 48 MB of decoded headers from a 16 KB frame.
        conn = RawH2(self.address)
        try:
            block = conn.encoder.encode(grpc_request_headers([(b"x-bomb", b"a" * 4000)]),
                                        huffman=False)
            block += b"\xbe" * (16000 - len(block))  # index 62: the newest dynamic entry
            start = time.monotonic()
            conn.send(frame(HEADERS, END_HEADERS, 1, block)
                      + frame(DATA, END_STREAM, 1, grpc_frame(Req(payload=b"b")
                                                              .SerializeToString())))
            last = conn.read_until(ended(1))
            self.assertIsNotNone(last, conn.frames)
            status, message = conn.grpc_status(1)
            self.assertEqual(status, RESOURCE_EXHAUSTED, conn.frames)
            self.assertIn("limits.max_header_bytes", message)
            self.assertLess(time.monotonic() - start, 5)
            # The connection serves the next call (the HPACK state is intact).
            conn.request(3, grpc_request_headers(),
                         grpc_frame(Req(payload=b"next").SerializeToString()), end_stream=True)
            self.assertIsNotNone(conn.read_until(ended(3)), conn.frames)
            self.assertEqual(conn.grpc_status(3)[0], OK, conn.frames)
        finally:
            conn.close()
        self.assert_healthy()

    FLOOD_BOUND = 64 << 20  # bytes a flood may send before the server must have closed

    def flood(self, one):
        """Sends copies of frame `one` without reading what comes back (a small receive
        buffer), until the server closes the connection or FLOOD_BOUND bytes were sent;
        returns (closed, bytes sent, acknowledgements read afterwards)."""
        conn = RawH2(self.address, rcvbuf=4096)
        try:
            chunk = one * ((64 << 10) // len(one))
            deadline = time.monotonic() + TIMEOUT
            while conn.sent < self.FLOOD_BOUND and time.monotonic() < deadline:
                if not conn.send(chunk):
                    break
            closed = conn.read_to_end()
            acks = [f for f in conn.frames if f.kind == one[3] and f.flags & ACK]
            return closed, conn.sent, len(acks)
        finally:
            conn.close()

    def test_settings_flood_ends_the_connection(self):
        # nghttp2 keeps at most 1000 acknowledgements queued (max_outbound_ack): past that
        # the gateway drops the connection.
        closed, sent, acks = self.served_during(lambda: self.flood(frame(SETTINGS, 0, 0)))
        self.assertTrue(closed, f"still open after {sent} bytes, {acks} ACKs read")
        self.assertLess(sent, self.FLOOD_BOUND)
        self.assertLess(acks * 9, sent)
        self.assert_healthy()

    def test_ping_flood_ends_the_connection(self):
        closed, sent, acks = self.served_during(
            lambda: self.flood(frame(PING, 0, 0, b"12345678")))
        self.assertTrue(closed, f"still open after {sent} bytes, {acks} ACKs read")
        self.assertLess(sent, self.FLOOD_BOUND)
        self.assertLess(acks * 17, sent)
        self.assert_healthy()

    def test_rapid_reset_gets_goaway(self):
        # 3000 calls opened and cancelled at once. nghttp2's reset rate limit (a burst of
        # 1000, then 33 a second) ends the connection with GOAWAY INTERNAL_ERROR after the
        # 1000th reset, before the gateway's own limit (twice max_concurrent_streams plus
        # 100, i.e. 2100 on the grpc_listener) would send ENHANCE_YOUR_CALM.
        def attack():
            conn = RawH2(self.address)
            try:
                data = b""
                for i in range(3000):
                    stream = 2 * i + 1
                    data += frame(HEADERS, END_HEADERS, stream,
                                  conn.block(grpc_request_headers()))
                    data += frame(RST_STREAM, 0, stream, struct.pack(">I", CANCEL))
                conn.send(data)
                goaway = conn.read_until(lambda f: f.kind == GOAWAY)
                conn.read_to_end()
                return goaway, conn.closed
            finally:
                conn.close()

        goaway, closed = self.served_during(attack)
        self.assertIsNotNone(goaway)
        self.assertEqual(goaway.error_code(), INTERNAL_ERROR)
        last_stream = struct.unpack(">I", goaway.payload[:4])[0] & 0x7FFFFFFF
        self.assertEqual(last_stream, 2001)  # the 1001st stream: nothing after it is taken
        self.assertTrue(closed)
        self.assert_healthy()

    def test_connection_window_overflow_is_a_connection_error(self):
        # RFC 9113 6.9.1: a WINDOW_UPDATE taking a window past 2^31-1 is FLOW_CONTROL_ERROR;
        # on the connection window, a connection error (GOAWAY).
        conn = RawH2(self.address)
        try:
            conn.read_until(lambda f: f.kind == SETTINGS, limit=2)
            conn.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)))
            goaway = conn.read_until(lambda f: f.kind == GOAWAY)
            self.assertIsNotNone(goaway, conn.frames)
            self.assertEqual(goaway.error_code(), FLOW_CONTROL_ERROR)
            self.assertTrue(conn.read_to_end())
        finally:
            conn.close()
        self.assert_healthy()

    def test_stream_window_overflow_resets_only_that_stream(self):
        # On a stream's window: a stream error (RST_STREAM); the connection serves on.
        conn = RawH2(self.address)
        try:
            conn.request(1, grpc_request_headers(), grpc_frame(b"", declared=4))
            conn.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0x7FFFFFFF)))
            reset = conn.read_until(lambda f: f.kind in (RST_STREAM, GOAWAY))
            self.assertIsNotNone(reset, conn.frames)
            self.assertEqual((reset.kind, reset.stream, reset.error_code()),
                             (RST_STREAM, 1, FLOW_CONTROL_ERROR))
            conn.request(3, grpc_request_headers(),
                         grpc_frame(Req(payload=b"after").SerializeToString()), end_stream=True)
            self.assertIsNotNone(conn.read_until(ended(3)), conn.frames)
            self.assertEqual(conn.grpc_status(3)[0], OK, conn.frames)
            self.assertFalse(conn.of_kind(GOAWAY))
        finally:
            conn.close()
        self.assert_healthy()

    def test_4gib_declared_message_is_refused_at_the_prefix(self):
        conn = RawH2(self.address)
        try:
            conn.request(1, grpc_request_headers(), grpc_frame(b"x" * 10, declared=0xFFFFFFFF))
            self.assertIsNotNone(conn.read_until(ended(1)), conn.frames)
            status, message = conn.grpc_status(1)
            self.assertEqual(status, RESOURCE_EXHAUSTED, conn.frames)
            self.assertIn("message of 4294967295 bytes", message)
            self.assertIn(f"limit of {MAX_MESSAGE_BYTES} bytes", message)
            self.assertIn("limits.max_message_bytes", message)
        finally:
            conn.close()
        self.assert_healthy()

    def test_stalled_message_ends_at_the_deadline(self):
        # 1 MB declared, 10 bytes sent, then nothing: the call ends at its deadline.
        conn = RawH2(self.address)
        try:
            start = time.monotonic()
            conn.request(1, grpc_request_headers([(b"grpc-timeout", b"1S")]),
                         grpc_frame(b"x" * 10, declared=1000000))
            self.assertIsNotNone(conn.read_until(ended(1)), conn.frames)
            elapsed = time.monotonic() - start
            self.assertEqual(conn.grpc_status(1)[0], DEADLINE_EXCEEDED, conn.frames)
            self.assertGreater(elapsed, 0.9)
            self.assertLess(elapsed, 5)
        finally:
            conn.close()
        self.assert_healthy()

    def test_stalled_message_ends_when_the_client_resets(self):
        # Without a deadline the call waits for the rest of the message; the client's
        # RST_STREAM ends it, and the connection serves on.
        conn = RawH2(self.address)
        try:
            conn.request(1, grpc_request_headers(), grpc_frame(b"x" * 10, declared=1000000))
            self.assertIsNone(conn.read_until(ended(1), limit=1), conn.frames)
            conn.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
            conn.request(3, grpc_request_headers(),
                         grpc_frame(Req(payload=b"next").SerializeToString()), end_stream=True)
            self.assertIsNotNone(conn.read_until(ended(3)), conn.frames)
            self.assertEqual(conn.grpc_status(3)[0], OK, conn.frames)
            self.assertFalse(conn.of_kind(GOAWAY))
        finally:
            conn.close()
        self.assert_healthy()


class PartlySentMessagesTest(unittest.TestCase):
    """Its own gateway: the memory this test moves must not count against the others'
    baseline."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends: [{{name: echo, target: "ipv4:{cls.backend.address}"}}]
services: [{{name: gateway.test.v1.Echo, backend: echo}}]
""", memory_measured=True)
        cls.address = cls.gateway.address
        GrpcHostileH2Test.call_ok(cls.address, b"warm up")

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def test_partly_sent_messages_are_passed_on_not_held(self):
        """Eight calls each send 6 MiB of an 8 MiB message and stall there: the relay passes
        request bytes on to the backend as they come (it reads only the 5-byte prefixes), so
        the gateway holds far less than the 48 MiB in flight, where holding each message
        until it is whole would keep all of it. Then the rest is sent: every call is echoed
        whole."""
        calls, first = 8, 6 << 20
        message = Req(payload=b"m" * ((8 << 20) - 16)).SerializeToString()
        wire = struct.pack(">BI", 0, len(message)) + message
        host, port = self.address.rsplit(":", 1)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16 << 20})
        conn.increment_flow_control_window(64 << 20)
        streams = [1 + 2 * i for i in range(calls)]
        for sid in streams:
            conn.send_headers(sid, [(k.decode(), v.decode()) for k, v in grpc_request_headers()])
        sent = {sid: 0 for sid in streams}
        body = {sid: b"" for sid in streams}
        trailers, ended = {}, set()
        before = rss_kib(self.gateway.proc.pid)

        def pump(sock, goal, deadline):
            """Sends each stream's bytes up to `goal` as the windows allow, reading the
            server's frames, until every stream reached it or `deadline`."""
            while time.monotonic() < deadline:
                for sid in streams:
                    while sent[sid] < goal:
                        room = min(conn.local_flow_control_window(sid),
                                   conn.max_outbound_frame_size, goal - sent[sid])
                        if room <= 0:
                            break
                        end = sent[sid] + room == len(wire)
                        conn.send_data(sid, wire[sent[sid]:sent[sid] + room], end_stream=end)
                        sent[sid] += room
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
                if all(sent[sid] >= goal for sid in streams) and (
                        goal < len(wire) or len(ended) == calls):
                    return
                sock.settimeout(0.2)
                try:
                    chunk = sock.recv(1 << 20)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                for event in conn.receive_data(chunk):
                    if isinstance(event, h2.events.DataReceived):
                        body[event.stream_id] += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                    elif isinstance(event, h2.events.TrailersReceived):
                        trailers[event.stream_id] = dict(event.headers)
                    elif isinstance(event, h2.events.StreamEnded):
                        ended.add(event.stream_id)
                    elif isinstance(event, h2.events.StreamReset):
                        self.fail(f"stream {event.stream_id} reset: {event.error_code}")
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)

        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            pump(sock, first, time.monotonic() + 3 * TIMEOUT)
            self.assertEqual(sent, {sid: first for sid in streams},
                             "the gateway stopped taking the partly sent messages")
            time.sleep(0.5)
            growth_mib = (rss_kib(self.gateway.proc.pid) - before) / 1024
            pump(sock, len(wire), time.monotonic() + 6 * TIMEOUT)
        print(f"\n[partial] {calls} calls x {first >> 20} MiB sent of 8 MiB messages: "
              f"gateway grew by {growth_mib:.1f} MiB", flush=True)
        # What a call may hold: its stream window on each side (1 MiB) and its retry replay
        # buffer (64 KiB); holding the messages until whole grew the gateway by 56 MiB.
        self.assertLess(growth_mib, 28, "the gateway held the partly sent messages")
        self.assertEqual(ended, set(streams), trailers)
        for sid in streams:
            self.assertEqual(trailers[sid].get(b"grpc-status"), b"0", trailers[sid])
            (length,) = struct.unpack(">I", body[sid][1:5])
            self.assertEqual(len(body[sid]), 5 + length)
            self.assertEqual(Resp.FromString(body[sid][5:]).payload, b"m" * ((8 << 20) - 16))
        self.assertTrue(self.gateway.alive(), self.gateway.output()[-3000:])


class StalledMessageTest(unittest.TestCase):
    """limits.idle_timeout bounds how long a client may stop inside a request message; a
    stream may stay quiet between messages as long as it likes."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener: {{address: "127.0.0.1:0", limits: {{idle_timeout: 1s}}}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends: [{{name: echo, target: "ipv4:{cls.backend.address}"}}]
services: [{{name: gateway.test.v1.Echo, backend: echo}}]
""")

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def test_a_call_stalled_inside_a_message_ends_and_the_stream_is_reset(self):
        conn = RawH2(self.gateway.address)
        try:
            message = Req(payload=b"p" * 100).SerializeToString()
            wire = struct.pack(">BI", 0, len(message)) + message
            started = time.monotonic()
            conn.request(1, grpc_request_headers(), body=wire[:40])  # and then nothing
            end = conn.read_until(ended(1), limit=TIMEOUT)
            took = time.monotonic() - started
            self.assertIsNotNone(end, conn.frames)
            status, text = conn.grpc_status(1)
            self.assertEqual(status, "4", conn.frames)
            self.assertIn("sent part of a request message and then nothing for 1s "
                          "(limits.idle_timeout)", text)
            self.assertGreaterEqual(took, 0.9)
            # The response ended while the client's side was open: RST_STREAM NO_ERROR.
            reset = conn.read_until(lambda f: f.kind == RST_STREAM and f.stream == 1, limit=2)
            self.assertIsNotNone(reset, conn.frames)
            self.assertEqual(reset.error_code(), 0)
        finally:
            conn.close()

    def test_a_stream_quiet_between_messages_is_not_ended(self):
        stubs = Stubs(self.gateway.address)
        try:
            def requests():
                yield Req(payload=b"one")
                time.sleep(2.5)  # longer than limits.idle_timeout, between two messages
                yield Req(payload=b"two")

            got = [r.payload for r in stubs.bidi(requests(), timeout=TIMEOUT)]
            self.assertEqual(got, [b"one", b"two"])
        finally:
            stubs.close()


if __name__ == "__main__":
    unittest.main()
