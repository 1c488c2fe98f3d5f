import assert from "node:assert/strict";
import { test } from "node:test";
import type { AnyModel } from "../../js/model/anywidget";
import { decodeHeadMessage, headLacksBuffers } from "../../js/model/head";
import { HeadHub, HeadLoader, type RequestHead } from "../../js/model/heads";
import { bytesSource, bytesTrait, fromBase64, stateCarriesBinary, Transport } from "../../js/model/transport";

function fakeModel(attrs: Record<string, unknown>): AnyModel {
  return { get: (name: string) => attrs[name] } as unknown as AnyModel;
}

const b64 = (bytes: number[]) => Buffer.from(bytes).toString("base64");

test("base64 decodes, and anything else gives no bytes", () => {
  assert.deepEqual([...fromBase64(b64([0, 1, 255]))], [0, 1, 255]);
  assert.equal(fromBase64("%%%").length, 0);
  assert.equal(fromBase64(undefined).length, 0);
});

test("the state check needs the probe's exact bytes", () => {
  assert.equal(stateCarriesBinary(fakeModel({ binary_probe: new DataView(new Uint8Array([0x68, 0x73, 1, 255]).buffer) })), true);
  assert.equal(stateCarriesBinary(fakeModel({ binary_probe: undefined })), false);
  assert.equal(stateCarriesBinary(fakeModel({ binary_probe: new DataView(new ArrayBuffer(0)) })), false);
  assert.equal(stateCarriesBinary(fakeModel({ binary_probe: {} })), false);
});

test("bytes traits come from text_data under the text transport, decoded once per string", () => {
  const attrs: Record<string, unknown> = { transport: "text", text_data: { atlas: b64([7, 8]) }, atlas: undefined };
  const model = fakeModel(attrs);
  const first = bytesTrait(model, "atlas");
  assert.deepEqual([...first], [7, 8]);
  assert.equal(bytesTrait(model, "atlas"), first); // same string: the same array
  assert.equal(bytesSource(model, "atlas"), b64([7, 8]));
  attrs.text_data = { atlas: b64([9]) };
  assert.deepEqual([...bytesTrait(model, "atlas")], [9]);
  assert.equal(bytesTrait(model, "scores").length, 0);
  attrs.transport = "binary";
  attrs.atlas = new DataView(new Uint8Array([1, 2, 3]).buffer, 1, 2);
  assert.deepEqual([...bytesTrait(model, "atlas")], [2, 3]);
});

test("the transport is asked for once", () => {
  const sent: object[] = [];
  const attrs: Record<string, unknown> = { transport: "binary", binary_probe: undefined };
  const transport = new Transport(fakeModel(attrs), (m) => (sent.push(m), true));
  transport.checkState();
  transport.useText("again");
  assert.equal(sent.length, 1);
  assert.deepEqual({ ...(sent[0] as Record<string, unknown>), reason: "" }, { type: "transport", mode: "text", reason: "" });
});

function head(requestId: string, extra: Record<string, unknown> = {}) {
  return { type: "head", request_id: requestId, run_id: 1, layer: 0, head: 0, seq_len: 2, packing: "tril", ...extra };
}

test("a head reply without its buffers is detected; with base64 it decodes", () => {
  const scales = new DataView(new Float32Array([1, 0.5]).buffer);
  const values = new DataView(new Uint8Array([255, 100, 255]).buffer);
  assert.equal(headLacksBuffers(head("a"), []), true);
  assert.equal(headLacksBuffers(head("a"), [scales]), true);
  assert.equal(headLacksBuffers(head("a"), [scales, new DataView(new ArrayBuffer(2))]), true);
  assert.equal(headLacksBuffers(head("a"), [scales, values]), false);
  assert.equal(headLacksBuffers({ type: "head_error", request_id: "a" }, []), false);
  const text = head("a", {
    scales_b64: Buffer.from(new Uint8Array(new Float32Array([1, 0.5]).buffer)).toString("base64"),
    values_b64: b64([255, 100, 255]),
  });
  assert.equal(headLacksBuffers(text, []), false);
  const decoded = decodeHeadMessage(text, []);
  assert.ok(decoded !== null && decoded.type === "head");
  assert.deepEqual([...decoded.pattern.values], [255, 100, 255]);
  assert.equal(decoded.pattern.scales[1], 0.5);
});

test("the hub switches to text and asks again when a reply lost its buffers", () => {
  const attrs: Record<string, unknown> = { transport: "binary" };
  const sent: object[] = [];
  const transport = new Transport(fakeModel(attrs), (m) => (sent.push(m), true));
  const requests: RequestHead[] = [];
  const hub = new HeadHub((m) => requests.push(m), () => 1, "v", transport);
  const shown: unknown[] = [];
  const errors: string[] = [];
  const loader = new HeadLoader(hub, { onHead: (p) => shown.push(p), onError: (e) => errors.push(e) });
  loader.load(1, 0, 0);
  const id = requests[0].request_id;
  hub.receive(head(id), []); // buffers dropped
  assert.deepEqual(sent.map((m) => (m as { type: string }).type), ["transport"]);
  assert.equal(requests.length, 2);
  assert.deepEqual(requests[1], requests[0]); // the same request, asked again
  assert.deepEqual(errors, []);
  attrs.transport = "text";
  const scales = Buffer.from(new Uint8Array(new Float32Array([1, 0.5]).buffer)).toString("base64");
  hub.receive(head(id, { scales_b64: scales, values_b64: b64([255, 100, 255]) }), []);
  assert.equal(shown.length, 1);
  assert.deepEqual(errors, []);
});
