// Calls the gateway from a page of another origin, the way browser clients do: REST with
// fetch (a preflighted JSON POST, a refused preflight, an NDJSON server stream), gRPC-Web
// with the grpc-web npm client (unary and server streaming), Connect with connect-web
// (unary JSON and binary, an error, a GET, a server stream; message types built at run time
// from the echo descriptor set the page server also serves), and a bidi stream over a
// WebSocket. Each check puts its outcome into window.results (and the #results element);
// window.done is set at the end. The gateway's address comes from the page's query:
// ?gateway=http://127.0.0.1:PORT.
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { GrpcWebClientBase, MethodDescriptor, MethodType } from "grpc-web";

const gateway = new URLSearchParams(location.search).get("gateway");
const ECHO = "/gateway.test.v1.Echo/";
const results = {};
window.results = results;
window.done = false;

// --- Protobuf by hand: EchoRequest {payload: bytes = 1, count: int32 = 6},
// EchoResponse {payload: bytes = 1, index: int32 = 2} ---

function varint(n, out) {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
}

function encodeRequest({ payload = "", count = 0 }) {
  const bytes = new TextEncoder().encode(payload);
  const out = [];
  if (bytes.length) {
    out.push(0x0a);
    varint(bytes.length, out);
    out.push(...bytes);
  }
  if (count) {
    out.push(0x30);
    varint(count, out);
  }
  return new Uint8Array(out);
}

function decodeResponse(bytes) {
  const msg = { payload: "", index: 0 };
  let i = 0;
  const readVarint = () => {
    let n = 0, shift = 0, b;
    do {
      b = bytes[i++];
      n |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return n >>> 0;
  };
  while (i < bytes.length) {
    const tag = readVarint();
    const field = tag >>> 3, wire = tag & 7;
    if (wire === 0) {
      const v = readVarint();
      if (field === 2) msg.index = v;
    } else if (wire === 2) {
      const n = readVarint();
      const chunk = bytes.subarray(i, i + n);
      i += n;
      if (field === 1) msg.payload = new TextDecoder().decode(chunk);
    } else {
      throw new Error(`unexpected wire type ${wire}`);
    }
  }
  return msg;
}

const b64 = (s) => btoa(s);
const unb64 = (s) => atob(s || "");

// --- The checks ---

// REST routes of the bookstore example (google.api.http rules).
async function restCreateShelf() {
  // A custom header makes this a preflighted request.
  const resp = await fetch(gateway + "/v1/shelves", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Echo-Test": "browser" },
    body: JSON.stringify({ theme: "browser" }),
  });
  const shelf = await resp.json();
  for (const title of ["First", "Second"]) {
    const book = await fetch(gateway + `/v1/shelves/${shelf.id}/books`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ title }),
    });
    if (book.status !== 200) throw new Error(`book ${title}: HTTP ${book.status}`);
  }
  window.shelf = shelf.id;
  return { status: resp.status, theme: shelf.theme };
}

// A header the CORS policy does not allow: the preflight is refused, fetch fails.
async function restRefusedPreflight() {
  try {
    await fetch(gateway + "/v1/shelves", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Not-Allowed": "1" },
      body: "{}",
    });
    return { refused: false };
  } catch (e) {
    return { refused: true, error: e.name };
  }
}

// A server stream read as it arrives: NDJSON, one book per line.
async function restServerStream() {
  const resp = await fetch(gateway + `/v1/shelves/${window.shelf}/books:stream`, {
    headers: { Accept: "application/x-ndjson" },
  });
  const reader = resp.body.getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const lines = text.split("\n").filter((l) => l.trim());
  return { status: resp.status, titles: lines.map((l) => JSON.parse(l).title) };
}

const client = new GrpcWebClientBase({ format: "binary" });
const unaryMethod = new MethodDescriptor(ECHO + "Unary", MethodType.UNARY, Object, Object,
                                         encodeRequest, decodeResponse);
const streamMethod = new MethodDescriptor(ECHO + "ServerStream", MethodType.SERVER_STREAMING,
                                          Object, Object, encodeRequest, decodeResponse);

async function grpcWebUnary() {
  const resp = await client.unaryCall(gateway + ECHO + "Unary", { payload: "grpc-web" }, {},
                                      unaryMethod);
  return { payload: resp.payload };
}

function grpcWebServerStream() {
  return new Promise((resolve, reject) => {
    const got = [];
    let status = null;
    const stream = client.serverStreaming(gateway + ECHO + "ServerStream",
                                          { payload: "s", count: 4 }, {}, streamMethod);
    stream.on("data", (m) => got.push(m.index));
    stream.on("status", (s) => { status = s.code; });
    stream.on("error", (e) => reject(new Error(`grpc-web error ${e.code}: ${e.message}`)));
    stream.on("end", () => resolve({ indexes: got, status }));
  });
}

// --- Connect (connect-web): every call is cross-origin, so POSTs are preflighted with the
// Connect headers (connect-protocol-version, connect-timeout-ms) ---

const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);
let echoService = null;

async function connectClient(options) {
  if (echoService === null) {
    const resp = await fetch("echo_proto.pb");  // the page's own server
    if (resp.status !== 200) throw new Error(`echo_proto.pb: HTTP ${resp.status}`);
    const set = fromBinary(FileDescriptorSetSchema, new Uint8Array(await resp.arrayBuffer()));
    echoService = createFileRegistry(set).getService("gateway.test.v1.Echo");
  }
  return createClient(echoService, createConnectTransport({ baseUrl: gateway, ...options }));
}

// Headers and trailers the script can read: only the exposed ones.
function collect(into) {
  return (h) => h.forEach((v, k) => { into[k] = v; });
}

async function connectUnaryJson() {
  const client = await connectClient({ useBinaryFormat: false });
  const headers = {}, trailers = {};
  const r = await client.unary({ payload: enc("connect-json") }, {
    headers: { "x-echo-color": "blue" }, timeoutMs: 5000,
    onHeader: collect(headers), onTrailer: collect(trailers),
  });
  const deadlineMs = Number(r.deadlineMs);
  return { payload: dec(r.payload), deadlineSet: deadlineMs > 0 && deadlineMs <= 5000,
           reflected: headers["x-reflect-color"] ?? null,
           trailer: trailers["x-echo-trailing"] ?? null };
}

async function connectUnaryBinary() {
  const client = await connectClient({ useBinaryFormat: true });
  const r = await client.unary({ payload: enc("connect-binary") }, { timeoutMs: 5000 });
  return { payload: dec(r.payload) };
}

async function connectUnaryError() {
  const client = await connectClient({ useBinaryFormat: false });
  try {
    await client.unary({ payload: enc("x"), failCode: 5, failMessage: "not here" });
    return { error: null };
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: Code[err.code], message: err.rawMessage };
  }
}

async function connectGet() {
  const client = await connectClient({ useBinaryFormat: true, useHttpGet: true });
  const r = await client.stats({ tag: "browser-nothing" });
  return { finished: r.finished, calls: r.calls };
}

async function connectServerStream() {
  const client = await connectClient({ useBinaryFormat: true });
  const got = [];
  for await (const r of client.serverStream({ payload: enc("cs"), count: 3 },
                                            { timeoutMs: 5000 })) {
    got.push([dec(r.payload), r.index]);
  }
  return { got };
}

function webSocketBidi() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(gateway.replace(/^http/, "ws") + ECHO + "Bidi");
    const words = ["one", "two", "three"];
    const got = [];
    ws.onopen = () => ws.send(JSON.stringify({ payload: b64(words[0]) }));
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      got.push(unb64(msg.payload));
      if (got.length < words.length) {
        ws.send(JSON.stringify({ payload: b64(words[got.length]) }));
      } else {
        ws.send("");  // the end of the request stream
      }
    };
    ws.onerror = () => {};
    ws.onclose = (event) => resolve({ messages: got, code: event.code, reason: event.reason });
  });
}

function webSocketError() {
  return new Promise((resolve) => {
    const ws = new WebSocket(gateway.replace(/^http/, "ws") + ECHO + "Bidi");
    const texts = [];
    ws.onopen = () => ws.send(JSON.stringify({ payload: b64("x"), fail_code: 5,
                                               fail_message: "not here" }));
    ws.onmessage = (event) => texts.push(JSON.parse(event.data));
    ws.onclose = (event) => resolve({ code: event.code, reason: event.reason, last: texts.pop() });
  });
}

async function run(name, fn) {
  try {
    results[name] = await Promise.race([
      fn(),
      new Promise((_, reject) => setTimeout(() => reject(new Error("timed out")), 10000)),
    ]);
  } catch (e) {
    results[name] = { error: String(e && e.message ? e.message : e) };
  }
  document.getElementById("results").textContent = JSON.stringify(results, null, 1);
}

(async () => {
  await run("restCreateShelf", restCreateShelf);
  await run("restRefusedPreflight", restRefusedPreflight);
  await run("restServerStream", restServerStream);
  await run("grpcWebUnary", grpcWebUnary);
  await run("grpcWebServerStream", grpcWebServerStream);
  await run("connectUnaryJson", connectUnaryJson);
  await run("connectUnaryBinary", connectUnaryBinary);
  await run("connectUnaryError", connectUnaryError);
  await run("connectGet", connectGet);
  await run("connectServerStream", connectServerStream);
  await run("webSocketBidi", webSocketBidi);
  await run("webSocketError", webSocketError);
  window.done = true;
})();
