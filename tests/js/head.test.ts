import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeHeadMessage, focusLevels, level, packedSize, strongest, weight, type HeadPattern } from "../../js/model/head";

/** Pack a dense matrix the way the kernel does (docs/wire.md). */
function pack(rows: number[][], packing: "tril" | "full"): { scales: Float32Array; values: Uint8Array } {
  const n = rows.length;
  const scales = new Float32Array(rows.map((r) => Math.max(...r)));
  const values: number[] = [];
  rows.forEach((r, q) => {
    const len = packing === "tril" ? q + 1 : n;
    for (let k = 0; k < len; k++) values.push(scales[q] > 0 ? Math.round((r[k] / scales[q]) * 255) : 0);
  });
  return { scales, values: Uint8Array.from(values) };
}

/** Copy bytes into a larger buffer at `offset` and return a DataView over them. */
function viewAt(bytes: Uint8Array, offset: number): DataView {
  const buf = new ArrayBuffer(bytes.byteLength + offset + 7);
  new Uint8Array(buf, offset, bytes.byteLength).set(bytes);
  return new DataView(buf, offset, bytes.byteLength);
}

const causal = [
  [1, 0, 0],
  [0.25, 0.75, 0],
  [0.001, 0.002, 0.997],
];

function message(rows: number[][], packing: "tril" | "full", offsets: [number, number] = [3, 5]) {
  const { scales, values } = pack(rows, packing);
  const content = { type: "head", request_id: 4, run_id: 2, layer: 1, head: 0, seq_len: rows.length, packing };
  return { content, buffers: [viewAt(new Uint8Array(scales.buffer), offsets[0]), viewAt(values, offsets[1])] };
}

function decoded(rows: number[][], packing: "tril" | "full"): HeadPattern {
  const { content, buffers } = message(rows, packing);
  const m = decodeHeadMessage(content, buffers);
  assert.ok(m !== null && m.type === "head");
  return m.pattern;
}

test("tril head decodes from DataViews with unaligned byte offsets", () => {
  const p = decoded(causal, "tril");
  assert.deepEqual([p.runId, p.layer, p.head, p.seqLen, p.packing], [2, 1, 0, 3, "tril"]);
  assert.equal(p.values.length, packedSize("tril", 3));
  for (let q = 0; q < 3; q++) {
    for (let k = 0; k < 3; k++) {
      assert.ok(Math.abs(weight(p, q, k) - causal[q][k]) <= p.scales[q] / 510 + 1e-7, `${q},${k}`);
    }
  }
  assert.equal(weight(p, 0, 2), 0, "above the diagonal is 0");
});

test("per-row scales keep diffuse rows exact to 1/510 of the row maximum", () => {
  const p = decoded(causal, "tril");
  assert.ok(Math.abs(weight(p, 2, 0) - 0.001) < 0.997 / 510);
  assert.equal(level(p, 2, 2), 254);
  assert.equal(level(p, 0, 0), 255);
});

test("full packing stores every row in full", () => {
  const rows = [
    [0.5, 0.5],
    [0.9, 0.1],
  ];
  const p = decoded(rows, "full");
  assert.equal(p.values.length, 4);
  assert.ok(Math.abs(weight(p, 0, 1) - 0.5) < 1e-6);
  assert.ok(Math.abs(weight(p, 1, 1) - 0.1) < 0.9 / 510);
});

test("malformed head messages become head errors for their request", () => {
  const { content, buffers } = message(causal, "tril");
  const short = decodeHeadMessage(content, [buffers[0], new DataView(new ArrayBuffer(2))]);
  assert.equal(short?.type, "head_error");
  assert.equal(short?.requestId, 4);
  assert.match(short?.type === "head_error" ? short.message : "", /values hold 2 bytes, expected 6/);
  const packing = decodeHeadMessage({ ...content, packing: "diag" }, buffers);
  assert.equal(packing?.type, "head_error");
  assert.equal(decodeHeadMessage({ type: "other" }, []), null);
  assert.equal(decodeHeadMessage("head", []), null);
  const err = decodeHeadMessage({ type: "head_error", request_id: 9, message: "layer 12 is out of range" }, []);
  assert.deepEqual(err, { type: "head_error", requestId: 9, message: "layer 12 is out of range" });
});

test("focus levels colour a row in query mode and a column in key mode", () => {
  const p = decoded(causal, "tril");
  assert.deepEqual([...focusLevels(p, "query", 1)], [64, 191, -1]);
  assert.deepEqual([...focusLevels(p, "key", 0)], [255, 64, 0]);
  assert.equal(strongest(p, "query", 1), 1);
  assert.equal(strongest(p, "key", 0), 0);
  assert.equal(strongest(p, "key", 1), 1);
});
