import assert from "node:assert/strict";
import { test } from "node:test";
import { deflateRawSync } from "node:zlib";
import {
  base64Bytes,
  decodeHead,
  parseDocument,
  unmask,
  unpackBytes,
  unplane,
  type ExportedHead,
} from "../../js/export/data";
import { NO_KERNEL, StaticModel, type HeadSource } from "../../js/export/static-model";
import { decodeHeadMessage, packedSize } from "../../js/model/head";
import { HeadHub, HeadLoader } from "../../js/model/heads";

/** One head packed as headscope/_export.py packs it: byte planes, mask, nonzero values. */
function packHead(layer: number, head: number, scales: Float32Array, values: Uint8Array): { entry: ExportedHead; text: string } {
  const n = scales.length;
  const raw = new Uint8Array(scales.buffer);
  const planes = new Uint8Array(4 * n);
  for (let k = 0; k < 4; k++) for (let i = 0; i < n; i++) planes[k * n + i] = raw[i * 4 + k];
  const mask = new Uint8Array(Math.ceil(values.length / 8));
  const nonzero: number[] = [];
  values.forEach((v, i) => {
    if (v !== 0) {
      mask[i >> 3] |= 1 << (i & 7);
      nonzero.push(v);
    }
  });
  const parts = [planes, mask, Uint8Array.from(nonzero)].map((p) => deflateRawSync(p, { level: 9 }));
  return {
    entry: { layer, head, packing: "tril", nonzero: nonzero.length, parts: parts.map((p) => p.length) as [number, number, number] },
    text: Buffer.concat(parts).toString("base64"),
  };
}

/** A causal head of `n` tokens with some zeros, some full-scale values. */
function sampleHead(n: number, seed: number): { scales: Float32Array; values: Uint8Array } {
  const scales = new Float32Array(n).map((_, q) => 1 / (q + 1) + seed / 100);
  const values = new Uint8Array(packedSize("tril", n)).map((_, i) => ((i * 37 + seed) % 5 === 0 ? (i * 13 + seed) % 256 : 0));
  return { scales, values };
}

test("byte planes and the mask decode back to the packed head", () => {
  assert.deepEqual([...unplane(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2)], [1, 3, 5, 7, 2, 4, 6, 8]);
  // bits 0, 3 and 9 are set: values 7, 8, 9 land there, the rest are 0
  assert.deepEqual([...unmask(Uint8Array.from([0b1001, 0b10]), Uint8Array.from([7, 8, 9]), 10)], [7, 0, 0, 8, 0, 0, 0, 0, 0, 9]);
  assert.throws(() => unmask(Uint8Array.from([0b111]), Uint8Array.from([1, 2]), 8), /marks more values/);
  assert.throws(() => unmask(Uint8Array.from([0b1]), Uint8Array.from([1, 2]), 8), /marks 1 values, but 2 are stored/);
  assert.throws(() => unmask(Uint8Array.from([0b1, 0]), Uint8Array.from([1]), 8), /mask holds 2 bytes, expected 1/);
  assert.throws(() => unmask(Uint8Array.from([0x80]), Uint8Array.from([1]), 7), /more values/);
});

test("a head decodes with DecompressionStream to the bytes the kernel sends", async () => {
  const { scales, values } = sampleHead(40, 3);
  const { entry, text } = packHead(1, 2, scales, values);
  const got = await decodeHead(text, entry, 40);
  assert.deepEqual(got.values, values);
  assert.deepEqual(got.scales, new Uint8Array(scales.buffer));
  await assert.rejects(decodeHead(text, { ...entry, nonzero: entry.nonzero + 1 }, 40), /values, expected/);
  await assert.rejects(decodeHead(text, entry, 41), /bytes of scales, expected 164/);
  await assert.rejects(decodeHead(text.slice(0, 40), entry, 40), /bytes stored, expected/);
  // attention that is not causal: whole rows
  const full = new Uint8Array(40 * 40).map((_, i) => (i % 3 === 0 ? i % 256 : 0));
  const packedFull = packHead(0, 0, scales, full);
  const gotFull = await decodeHead(packedFull.text, { ...packedFull.entry, packing: "full" }, 40);
  assert.deepEqual(gotFull.values, full);
});

test("bytes traits inflate and are checked for their length", async () => {
  const data = Buffer.from([5, 0, 0, 0, 9]);
  const packed = { size: 5, data: deflateRawSync(data).toString("base64") };
  assert.deepEqual([...(await unpackBytes(packed, "atlas"))], [5, 0, 0, 0, 9]);
  await assert.rejects(unpackBytes({ ...packed, size: 6 }, "atlas"), /atlas holds 5 bytes, expected 6/);
  assert.deepEqual([...base64Bytes("AAH/\n")], [0, 1, 255]);
});

test("the document is checked for its format and version", () => {
  const doc = { format: "headscope-export", version: 1, traits: {}, bytes: {}, seq_len: 3, heads: [], total_heads: 1 };
  assert.equal(parseDocument(JSON.stringify(doc)).seq_len, 3);
  assert.throws(() => parseDocument(JSON.stringify({ ...doc, format: "x" })), /not a headscope export/);
  assert.throws(() => parseDocument(JSON.stringify({ ...doc, version: 2 })), /format version 2/);
  assert.throws(() => parseDocument(JSON.stringify({ ...doc, seq_len: 0 })), /seq_len/);
});

/** Heads of a 2 x 2 run of 6 tokens, of which (0, 0) and (1, 1) are exported. */
function source(): { heads: HeadSource; samples: Map<string, { scales: Float32Array; values: Uint8Array }> } {
  const samples = new Map([
    ["0/0", sampleHead(6, 1)],
    ["1/1", sampleHead(6, 2)],
  ]);
  const packed = new Map([...samples].map(([key, s]) => {
    const [layer, head] = key.split("/").map(Number);
    return [key, packHead(layer, head, s.scales, s.values)];
  }));
  const heads: HeadSource = {
    seqLen: 6,
    packing: (layer, head) => (packed.has(`${layer}/${head}`) ? "tril" : null),
    load: (layer, head) => {
      const p = packed.get(`${layer}/${head}`);
      return p === undefined ? Promise.reject(new Error("no such head")) : decodeHead(p.text, p.entry, 6);
    },
    missing: (layer, head) => `layer ${layer}, head ${head} is not in this export`,
  };
  return { heads, samples };
}

function messages(model: StaticModel): Promise<{ content: Record<string, unknown>; buffers: readonly unknown[] }> {
  return new Promise((resolve) => {
    const once = (content: unknown, buffers: unknown): void => {
      model.off("msg:custom", once);
      resolve({ content: content as Record<string, unknown>, buffers: buffers as readonly unknown[] });
    };
    model.on("msg:custom", once);
  });
}

test("the static model answers request_head as the kernel does", async () => {
  const { heads, samples } = source();
  const model = new StaticModel({ run_id: 3, n_layers: 2, n_heads: 2 }, heads);
  const reply = messages(model);
  model.send({ type: "request_head", request_id: "v-1", layer: 1, head: 1, selected: true });
  const { content, buffers } = await reply;
  const decoded = decodeHeadMessage(content, buffers);
  assert.ok(decoded !== null && decoded.type === "head");
  assert.equal(decoded.requestId, "v-1");
  const p = decoded.pattern;
  assert.deepEqual([p.runId, p.layer, p.head, p.seqLen, p.packing], [3, 1, 1, 6, "tril"]);
  assert.deepEqual(p.values, samples.get("1/1")?.values);
  assert.deepEqual([...p.scales], [...(samples.get("1/1")?.scales ?? [])]);

  const missing = messages(model);
  model.send({ type: "request_head", request_id: "v-2", layer: 0, head: 1, selected: true });
  assert.deepEqual((await missing).content, { type: "head_error", request_id: "v-2", message: "layer 0, head 1 is not in this export" });

  const run = messages(model);
  model.send({ type: "run", prompt: "x", request_id: "v-run-1", superseded: [] });
  assert.deepEqual((await run).content, { type: "run_done", request_id: "v-run-1", ok: false, superseded: false });
});

test("a head loader on the static model shows exported heads and says which are missing", async () => {
  const { heads, samples } = source();
  const model = new StaticModel({ run_id: 1 }, heads);
  const hub = new HeadHub((m) => model.send(m), () => 1, "t");
  model.on("msg:custom", (content: unknown, buffers: unknown) => hub.receive(content, buffers as readonly unknown[]));
  const shown = await new Promise<unknown>((resolve) => {
    const loader = new HeadLoader(hub, { onHead: resolve, onError: resolve });
    assert.equal(loader.load(1, 0, 0), false);
  });
  assert.deepEqual((shown as { values: Uint8Array }).values, samples.get("0/0")?.values);
  const error = await new Promise<unknown>((resolve) => {
    new HeadLoader(hub, { onHead: resolve, onError: resolve }).load(1, 1, 0);
  });
  assert.equal(error, "layer 1, head 0 is not in this export");
  assert.ok(hub.cached(1, 0, 0) !== undefined); // asked again, it comes from the hub's cache
});

test("the static model syncs nothing: set changes the state and tells listeners", () => {
  const model = new StaticModel({ layer: 0, note: NO_KERNEL }, source().heads);
  const seen: unknown[] = [];
  model.on("change:layer", (_m: unknown, value: unknown) => seen.push(value));
  assert.equal(model.set({}), model); // Backbone's set({}): the model itself, a stable key
  model.set("layer", 1);
  model.set("layer", 1); // no change, no event
  model.save_changes();
  assert.deepEqual(seen, [1]);
  assert.equal(model.get("layer"), 1);
  model.off("change:layer");
  model.set("layer", 0);
  assert.deepEqual(seen, [1]);
});

test("a prefetched head is decoded once and answered from that decode", async () => {
  const { heads } = source();
  let loads = 0;
  const counting: HeadSource = { ...heads, packing: heads.packing, missing: heads.missing, load: (l, h) => (loads++, heads.load(l, h)) };
  const model = new StaticModel({ run_id: 1 }, counting);
  await Promise.all([model.prefetch(0, 0), model.prefetch(0, 1)]); // (0, 1) is not exported: nothing to decode
  const reply = messages(model);
  model.send({ type: "request_head", request_id: 1, layer: 0, head: 0, selected: true });
  assert.equal((await reply).content.type, "head");
  assert.equal(loads, 1);
  const again = messages(model); // asked again later (another view, a cleared cache): decoded again
  model.send({ type: "request_head", request_id: 2, layer: 0, head: 0, selected: true });
  assert.equal((await again).content.type, "head");
  assert.equal(loads, 2);
});
