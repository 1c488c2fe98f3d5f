import assert from "node:assert/strict";
import { test } from "node:test";
import { focusLevels, level, weight, type HeadPattern } from "../../js/model/head";
import { pairLines } from "../../js/renderers/tooltip";
import { countOf } from "../../js/sidepanel/generate";
import { generatedSuffix, isGenerated } from "../../js/state/generated";
import { NO_REWEIGHT, reweightNote, reweightPattern, reweightRow } from "../../js/state/reweight";
import { initialViewState, setHideBos } from "../../js/state/view-state";

const HIDE = { hideBos: true };

function close(got: ArrayLike<number>, want: readonly number[], tol = 1e-12): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol, `[${i}] ${got[i]} != ${want[i]}`);
}

test("hide BOS zeroes key 0 and renormalizes the rest of the row to sum 1", () => {
  close(reweightRow([0.5, 0.3, 0.2], HIDE), [0, 0.6, 0.4]);
  close(reweightRow([0.9, 0.1], HIDE), [0, 1]);
  const row = reweightRow([0.7, 0.1, 0.15, 0.05], HIDE);
  close(row, [0, 1 / 3, 0.5, 1 / 6]);
  assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12);
});

test("a row with no mass left stays zero, and the input is not changed", () => {
  close(reweightRow([1], HIDE), [0]);
  close(reweightRow([1, 0, 0], HIDE), [0, 0, 0]);
  close(reweightRow([0, 0], HIDE), [0, 0]);
  const input = Float32Array.from([0.5, 0.25, 0.25]);
  reweightRow(input, HIDE);
  assert.deepEqual(Array.from(input), [0.5, 0.25, 0.25]);
});

test("without options the row is unchanged (not renormalized)", () => {
  close(reweightRow([0.5, 0.3, 0.1], NO_REWEIGHT), [0.5, 0.3, 0.1]);
  assert.equal(reweightNote(NO_REWEIGHT), "");
  assert.match(reweightNote(HIDE), /BOS hidden, row renormalized/);
});

/** A tril head from dense rows, packed the kernel's way. */
function head(rows: number[][]): HeadPattern {
  const scales = new Float32Array(rows.map((r) => Math.max(...r)));
  const values: number[] = [];
  rows.forEach((r, q) => {
    for (let k = 0; k <= q; k++) values.push(Math.round((r[k] / scales[q]) * 255));
  });
  return { runId: 1, layer: 0, head: 0, seqLen: rows.length, packing: "tril", scales, values: Uint8Array.from(values) };
}

test("a reweighted head: exact renormalized weights, levels, and the same object for the same options", () => {
  const p = head([[1, 0, 0], [0.8, 0.2, 0], [0.6, 0.3, 0.1]]);
  assert.equal(reweightPattern(p, NO_REWEIGHT), p);
  const r = reweightPattern(p, HIDE);
  assert.equal(reweightPattern(p, HIDE), r);
  for (let q = 0; q < 3; q++) {
    const raw = [0, 1, 2].map((k) => (k <= q ? weight(p, q, k) : 0));
    const want = reweightRow(raw.slice(0, q + 1), HIDE);
    for (let k = 0; k <= q; k++) assert.ok(Math.abs(weight(r, q, k) - want[k]) < 1e-6, `${q},${k}`);
  }
  assert.equal(weight(r, 0, 0), 0); // query 0 has only BOS: its row stays 0
  assert.equal(weight(r, 1, 1), 1);
  assert.ok(Math.abs(weight(r, 2, 1) - weight(p, 2, 1) / (weight(p, 2, 1) + weight(p, 2, 2))) < 1e-6);
  assert.equal(level(r, 1, 1), 255);
  assert.equal(level(r, 2, 0), 0);
  assert.deepEqual(Array.from(focusLevels(r, "query", 1)), [0, 255, -1]);
  // the quantized bytes (for painting) agree with the exact weights within a level
  for (let q = 0; q < 3; q++) {
    for (let k = 0; k <= q; k++) {
      const painted = Math.round(r.values[(q * (q + 1)) / 2 + k] * r.scales[q]);
      assert.ok(Math.abs(painted - 255 * weight(r, q, k)) <= 1, `${q},${k}`);
    }
  }
});

test("the view state keeps the hide-BOS option", () => {
  assert.equal(initialViewState.hideBos, false);
  const on = setHideBos(initialViewState, true);
  assert.equal(on.hideBos, true);
  assert.equal(setHideBos(on, true), on);
  assert.equal(setHideBos(on, false).hideBos, false);
});

test("generated tokens: which positions, and what the tooltip says", () => {
  assert.equal(isGenerated(3, -1), false);
  assert.equal(isGenerated(2, 3), false);
  assert.equal(isGenerated(3, 3), true);
  assert.equal(generatedSuffix(5, 3), " (generated)");
  const [pair, w] = pairLines(["a", "b", "c", "d"], 3, 1, 0.25, { generatedFrom: 2, weightNote: reweightNote(HIDE) });
  assert.match(pair, /^query 3 .*"d".* \(generated\) → key 1 .*"b"\u2069$/u);
  assert.equal(w, "weight 0.250 (BOS hidden, row renormalized)");
  assert.deepEqual(pairLines(["a", "b"], 1, 0, 0.5)[1], "weight 0.500");
});

test("the count box sends numbers as numbers and anything else as text", () => {
  assert.equal(countOf("20"), 20);
  assert.equal(countOf(" 7 "), 7);
  assert.equal(countOf("2.5"), 2.5);
  assert.equal(countOf("0"), 0);
  assert.equal(countOf(""), "");
  assert.equal(countOf("abc"), "abc");
  assert.equal(countOf("x".repeat(100)).toString().length, 20);
});
