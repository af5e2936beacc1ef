// Calls the echo service through the gateway with the real Connect client of connect-node
// (types built at run time from the descriptor set: no code generation) and prints what
// every call returned as one JSON object.
//
//   node client.mjs <base URL> <1.1|2> <proto|json> <echo_proto.pb> <node_modules dir>
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [baseUrl, httpVersion, format, descriptorSet, modules] = process.argv.slice(2);
const load = (name, file) => import(pathToFileURL(path.join(modules, name, file)).href);
const { createClient, ConnectError, Code } = await load("@connectrpc/connect", "dist/esm/index.js");
const { createConnectTransport, compressionGzip } =
  await load("@connectrpc/connect-node", "dist/esm/index.js");
const { fromBinary, createFileRegistry } = await load("@bufbuild/protobuf", "dist/esm/index.js");
const { FileDescriptorSetSchema } = await load("@bufbuild/protobuf", "dist/esm/wkt/index.js");

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(descriptorSet)));
const service = registry.getService("gateway.test.v1.Echo");
const options = { baseUrl, httpVersion, useBinaryFormat: format === "proto" };
const client = createClient(service, createConnectTransport(options));
const getClient = createClient(service, createConnectTransport({ ...options, useHttpGet: true }));
// Requests gzip-compressed (every message), gzip accepted for responses.
const gzipClient = createClient(service, createConnectTransport({
  ...options, sendCompression: compressionGzip, acceptCompression: [compressionGzip],
  compressMinBytes: 0 }));
const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);

async function attempt(fn) {
  try {
    return { ok: await fn() };
  } catch (e) {
    const err = ConnectError.from(e);
    return { error: { code: Code[err.code], message: err.rawMessage,
                      details: err.details.map((d) => d.desc ? d.desc.typeName : d.type) } };
  }
}

const out = {};
out.unary = await attempt(async () => {
  const headers = {}, trailers = {};
  const r = await client.unary({ payload: enc("hello") }, {
    headers: { "x-echo-color": "blue" }, timeoutMs: 5000,
    onHeader: (h) => h.forEach((v, k) => { headers[k] = v; }),
    onTrailer: (t) => t.forEach((v, k) => { trailers[k] = v; }),
  });
  return { payload: dec(r.payload), deadlineMs: Number(r.deadlineMs), metadata: r.metadata,
           headers, trailers };
});
out.unaryError = await attempt(() =>
  client.unary({ payload: enc("x"), failCode: 5, failMessage: "no such book" }));
out.serverStream = await attempt(async () => {
  const got = [];
  const trailers = {};
  for await (const r of client.serverStream({ payload: enc("s"), count: 3 },
      { onTrailer: (t) => t.forEach((v, k) => { trailers[k] = v; }) })) {
    got.push([dec(r.payload), r.index]);
  }
  return { got, trailers };
});
out.serverStreamError = await attempt(async () => {
  const got = [];
  try {
    for await (const r of client.serverStream({ payload: enc("e"), count: 5, failCode: 8,
                                                failMessage: "quota gone", failAfter: 2 })) {
      got.push(r.index);
    }
  } catch (e) {
    const err = ConnectError.from(e);
    return { got, code: Code[err.code], message: err.rawMessage };
  }
  return { got };
});
out.get = await attempt(async () => {
  const r = await getClient.stats({ tag: "nothing" });
  return { finished: r.finished, calls: r.calls };
});
out.gzip = await attempt(async () => {
  const big = "g".repeat(30000);  // under limits.max_message_bytes as JSON too
  const r = await gzipClient.unary({ payload: enc(big) });
  const got = [];
  for await (const s of gzipClient.serverStream({ payload: enc(big), count: 2 })) {
    got.push(dec(s.payload) === big);
  }
  return { unary: dec(r.payload) === big, stream: got };
});
async function* requests(n) {
  for (let i = 0; i < n; i++) yield { payload: enc(`m${i}`) };
}
if (httpVersion === "2") {
  out.clientStream = await attempt(async () => {
    const r = await client.clientStream(requests(4));
    return { index: r.index, payload: dec(r.payload) };
  });
  out.bidi = await attempt(async () => {
    const got = [];
    for await (const r of client.bidi(requests(3))) got.push([dec(r.payload), r.index]);
    return got;
  });
}
process.stdout.write(JSON.stringify(out));
