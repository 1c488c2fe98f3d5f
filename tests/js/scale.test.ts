/** The pieces that let the front end hold many heads and long prompts: pure, without a page. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { HeadPattern } from "../../js/model/head";
import { atlasCellOrigin, atlasHeadAt, atlasLayout, MIN_ATLAS_CELL, sameValues, scrollToShow } from "../../js/renderers/grid";
import { buildLut } from "../../js/renderers/lut";
import { atlasOffset, poolAtlas, type Pixels } from "../../js/renderers/paint";
import { PaintedHeads } from "../../js/renderers/painted";

test("32 × 32 heads keep the atlas's smallest cell and grow past the panel; 12 × 12 still fit", () => {
  const big = atlasLayout(32, 32, 280, MIN_ATLAS_CELL);
  assert.equal(big.cell, MIN_ATLAS_CELL);
  assert.ok(big.width > 280 && big.height > 400, JSON.stringify(big));
  const last = atlasCellOrigin(big, { layer: 31, head: 31 });
  assert.deepEqual(atlasHeadAt(big, last.x + 1, last.y + 1), { layer: 31, head: 31 });
  const small = atlasLayout(12, 12, 280, MIN_ATLAS_CELL);
  assert.deepEqual(small, atlasLayout(12, 12, 280), "the minimum changes nothing where cells are larger");
  assert.ok(small.width <= 280);
});

test("the scroll that shows a cell moves only as far as needed, past the label strip", () => {
  // a 300-px window whose first 26 px are labels; cells 12 px
  assert.equal(scrollToShow(0, 300, 26, 100, 12), 0, "already in view");
  assert.equal(scrollToShow(0, 300, 26, 400, 12), 400 + 12 + 4 - 300, "below: its far edge comes into view");
  assert.equal(scrollToShow(200, 300, 26, 210, 12), 210 - 4 - 26, "under the strip: it comes out from under it");
  assert.equal(scrollToShow(50, 300, 26, 20, 12), 0, "never before the start");
});

test("thumbnails drawn smaller are max-pooled: a thin diagonal keeps its full value", () => {
  const [nLayers, nHeads, thumb, size] = [1, 2, 38, 12];
  const atlas = new Uint8Array(nLayers * nHeads * thumb * thumb);
  for (let i = 0; i < thumb; i++) atlas[atlasOffset(nHeads, thumb, 0, 1) + i * thumb + i] = 255; // head 1: diagonal
  atlas[atlasOffset(nHeads, thumb, 0, 0) + 37 * thumb + 0] = 9; // head 0: one bin in the last row
  const pooled = poolAtlas(atlas, nLayers, nHeads, thumb, size);
  assert.equal(pooled.length, nLayers * nHeads * size * size);
  const at = (head: number, i: number, j: number): number => pooled[atlasOffset(nHeads, size, 0, head) + i * size + j];
  for (let i = 0; i < size; i++) assert.equal(at(1, i, i), 255, `diagonal bin ${i}`);
  assert.equal(at(1, 0, size - 1), 0);
  assert.equal(at(0, size - 1, 0), 9, "every source bin lands in an output bin");
  assert.throws(() => poolAtlas(atlas, nLayers, nHeads, thumb, thumb));
});

test("per-head values compare by value, NaN equal to NaN", () => {
  assert.ok(sameValues(new Float32Array([1, NaN]), new Float32Array([1, NaN])));
  assert.ok(!sameValues(new Float32Array([1, 2]), new Float32Array([1, 3])));
  assert.ok(!sameValues(new Float32Array([1]), new Float32Array([1, 1])));
});

function head(seqLen: number, id: number): HeadPattern {
  const values = new Uint8Array((seqLen * (seqLen + 1)) / 2).fill(255);
  return { runId: 1, layer: 0, head: id, seqLen, packing: "tril", scales: new Float32Array(seqLen).fill(id / 10), values };
}

test("painted heads are kept within a byte budget, least recently used first out, each with its LUT", () => {
  const pixels = (width: number, height: number): Pixels => ({ width, height, data: new Uint8ClampedArray(width * height * 4) });
  const lut = buildLut([[0, "#000000"], [1, "#ffffff"]]);
  const kept = new PaintedHeads(pixels, 3 * 16 * 16 * 4); // room for three 16-token heads
  const heads = [0, 1, 2, 3].map((i) => head(16, i + 1));
  const first = kept.paint(heads[0], lut);
  assert.equal(first.kept, false);
  assert.equal(first.image.data[(5 * 16 + 2) * 4], Math.round(255 * 0.1), "painted through the LUT");
  assert.equal(kept.paint(heads[0], lut).image, first.image, "the same pixels the second time");
  assert.equal(kept.paint(heads[0], lut).kept, true);
  kept.paint(heads[1], lut);
  kept.paint(heads[2], lut);
  kept.paint(heads[0], lut); // now the most recent
  kept.paint(heads[3], lut); // over budget: head 1 goes
  assert.equal(kept.size, 3);
  assert.equal(kept.bytes, 3 * 16 * 16 * 4);
  assert.ok(kept.has(heads[0], lut) && !kept.has(heads[1], lut) && kept.has(heads[3], lut));
  const other = buildLut([[0, "#ffffff"], [1, "#000000"]]);
  const dark = kept.paint(heads[0], other);
  assert.equal(dark.kept, false, "a new LUT paints again");
  assert.equal(dark.image.data[(5 * 16 + 2) * 4], 255 - Math.round(255 * 0.1));
  assert.ok(kept.has(heads[0], other) && !kept.has(heads[0], lut) && !kept.has(heads[2], other));
  assert.equal(kept.size, 3, "in place of the old pixels");
  assert.equal(kept.bytes, 3 * 16 * 16 * 4);
  const tiny = new PaintedHeads(pixels, 100);
  assert.equal(tiny.paint(heads[0], lut).kept, false);
  assert.equal(tiny.size, 0, "a head over the whole budget is painted but not kept");
});
