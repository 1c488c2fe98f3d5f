import assert from "node:assert/strict";
import { test } from "node:test";
import { weight, type HeadPattern } from "../../js/model/head";
import type { Traits } from "../../js/model/traits";
import { atlasReady, HeadNorms, normsReady, pendingText, STATIC_REASON, valueWeightedOn, valueWeightedReason } from "../../js/model/value-norms";
import { pairLines } from "../../js/renderers/tooltip";
import { reweightNote, reweightPattern, reweightRow, reweights } from "../../js/state/reweight";

function close(got: ArrayLike<number>, want: readonly number[], tol = 1e-9): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol, `[${i}] ${got[i]} != ${want[i]}`);
}

test("a per-key factor multiplies each weight and renormalizes the row", () => {
  const factor = Float32Array.from([2, 1, 4]);
  // 0.5*2, 0.3*1, 0.2*4 = 1, 0.3, 0.8 -> / 2.1
  close(reweightRow([0.5, 0.3, 0.2], { hideBos: false, keyFactor: factor }), [1 / 2.1, 0.3 / 2.1, 0.8 / 2.1]);
  // with hide BOS as well: key 0 gets 0, the factors apply to the rest
  close(reweightRow([0.5, 0.3, 0.2], { hideBos: true, keyFactor: factor }), [0, 0.3 / 1.1, 0.8 / 1.1]);
  // a row whose keys all have norm 0 stays 0
  close(reweightRow([0.5, 0.5], { hideBos: false, keyFactor: Float32Array.from([0, 0]) }), [0, 0]);
  assert.equal(reweights({ hideBos: false, keyFactor: null }), false);
  assert.equal(reweights({ hideBos: false, keyFactor: factor }), true);
  assert.equal(reweightNote({ hideBos: false, keyFactor: factor }), "");
  assert.match(reweightNote({ hideBos: true, keyFactor: factor }), /BOS hidden/);
});

function head(rows: number[][]): HeadPattern {
  const scales = new Float32Array(rows.map((r) => Math.max(...r)));
  const values: number[] = [];
  rows.forEach((r, q) => {
    for (let k = 0; k <= q; k++) values.push(Math.round((r[k] / scales[q]) * 255));
  });
  return { runId: 3, layer: 1, head: 0, seqLen: rows.length, packing: "tril", scales, values: Uint8Array.from(values) };
}

test("a value-weighted head: exact shares, cached per factor array", () => {
  const p = head([[1, 0, 0], [0.75, 0.25, 0], [0.5, 0.25, 0.25]]);
  const norms = Float32Array.from([0.5, 3, 1]);
  const r = reweightPattern(p, { hideBos: false, keyFactor: norms });
  assert.equal(reweightPattern(p, { hideBos: false, keyFactor: norms }), r);
  const other = reweightPattern(p, { hideBos: false, keyFactor: Float32Array.from([1, 1, 1]) });
  assert.notEqual(other, r);
  for (let q = 0; q < 3; q++) {
    let sum = 0;
    for (let k = 0; k <= q; k++) sum += weight(p, q, k) * norms[k];
    for (let k = 0; k <= q; k++) assert.ok(Math.abs(weight(r, q, k) - (weight(p, q, k) * norms[k]) / sum) < 1e-6);
  }
  // the tooltip gives the value-weighted share and the raw weight
  const lines = pairLines(["a", "b", "c"], 1, 1, weight(r, 1, 1), { generatedFrom: -1, weightNote: "", raw: p });
  assert.equal(lines[1], `value-weighted ${weight(r, 1, 1).toFixed(3)} · weight ${weight(p, 1, 1).toFixed(3)}`);
  assert.equal(pairLines(["a", "b", "c"], 1, 1, 0.25)[1], "weight 0.250");
});

function traits(over: Partial<Traits>): Traits {
  const base = {
    tokens: ["a", "b", "c"], nLayers: 2, nHeads: 2, layer: 1, head: 0, runId: 4, atlas: new Uint8Array(8), staticExport: false,
    valueWeighted: true, valueWeightedReason: "", valueNorms: Float32Array.from([1, 2, 3, 4, 5, 6]), valueNormsLayer: 1,
    valueNormsRunId: 4, atlasValueWeighted: new Uint8Array(8), atlasValueWeightedRunId: 4,
  };
  return { ...base, ...over } as unknown as Traits;
}

test("the kernel's norms and atlas apply only to their run and layer", () => {
  assert.equal(valueWeightedOn(traits({})), true);
  assert.equal(normsReady(traits({}), 4, 1), true);
  assert.equal(normsReady(traits({}), 4, 0), false);
  assert.equal(normsReady(traits({}), 3, 1), false);
  assert.equal(normsReady(traits({ valueNorms: new Float32Array(5) }), 4, 1), false);
  assert.equal(atlasReady(traits({ atlasValueWeightedRunId: 3 })), false);
  assert.equal(pendingText(traits({})), "");
  assert.match(pendingText(traits({ valueNormsRunId: 3 })), /value norms/);
  assert.match(pendingText(traits({ atlasValueWeightedRunId: 3 })), /atlas/);
  assert.equal(pendingText(traits({ valueWeighted: false, valueNormsRunId: 3 })), "");
  // unavailable: the reason; in a static export: no kernel
  assert.equal(valueWeightedOn(traits({ valueWeightedReason: "remote" })), false);
  assert.equal(valueWeightedReason(traits({ valueWeightedReason: "remote" })), "remote");
  assert.equal(valueWeightedOn(traits({ staticExport: true })), false);
  assert.equal(valueWeightedReason(traits({ staticExport: true })), STATIC_REASON);
});

test("a head's norms are the same array while the kernel's bytes stay the same", () => {
  const norms = new HeadNorms();
  const t = traits({});
  const source = {};
  const h1 = norms.forHead(t, source, 4, 1, 1);
  assert.deepEqual(Array.from(h1 ?? []), [4, 5, 6]);
  assert.equal(norms.forHead(t, source, 4, 1, 1), h1);
  assert.notEqual(norms.forHead(t, {}, 4, 1, 1), h1);
  assert.equal(norms.forHead(t, source, 4, 0, 1), null);
  assert.equal(norms.forHead(t, source, 4, 1, 2), null);
});
