import assert from "node:assert/strict";
import { test } from "node:test";
import type { HeadPattern } from "../../js/model/head";
import { atlasCellOrigin, atlasHeadAt, atlasLayout, moveSelection } from "../../js/renderers/atlas";
import { buildLut, DIVERGING, levelOf, luminance, lutColor, parseHex, prefersDarkText, STOPS } from "../../js/renderers/lut";
import { atlasOffset, paintAtlas, paintPattern } from "../../js/renderers/paint";
import { closeBidi, displayToken, FSI, isolatedToken, PDI, quoteToken, tokenSegments } from "../../js/renderers/text";
import { startsWord } from "../../js/renderers/tokens";
import { intersects, placeTooltip, type Box } from "../../js/renderers/tooltip";
import { cellAt, cellBox, fullView, labelPositions, labelStep, pan, zoom } from "../../js/renderers/viewport";

test("the LUT interpolates between stops and maps weights to indices", () => {
  const lut = buildLut([
    [0, "#000000"],
    [1, "#ff0080"],
  ]);
  assert.equal(lut.length, 1024);
  assert.deepEqual(lutColor(lut, 0), [0, 0, 0]);
  assert.deepEqual(lutColor(lut, 255), [255, 0, 128]);
  assert.deepEqual(lutColor(lut, 51), [51, 0, 26]);
  assert.equal(lut[51 * 4 + 3], 255);
  assert.deepEqual([levelOf(-1), levelOf(0), levelOf(0.5), levelOf(1), levelOf(7), levelOf(NaN)], [0, 0, 128, 255, 255, 0]);
  const light = buildLut(STOPS.light);
  assert.deepEqual(lutColor(light, 0), parseHex("#f8fafc"));
  assert.deepEqual(lutColor(light, 255), parseHex("#1e1457"));
  assert.ok(prefersDarkText(lutColor(light, 0)) && !prefersDarkText(lutColor(light, 255)));
  assert.throws(() => buildLut([[0.2, "#000000"], [1, "#ffffff"]]));
  assert.throws(() => parseHex("red"));
});

test("a pattern paints one pixel per (query_pos, key_pos) through the LUT", () => {
  const lut = buildLut([
    [0, "#000000"],
    [1, "#ffffff"],
  ]);
  const p: HeadPattern = {
    runId: 1, layer: 0, head: 0, seqLen: 2, packing: "tril",
    scales: new Float32Array([1, 0.5]),
    values: new Uint8Array([255, 255, 128]),
  };
  const out = { width: 2, height: 2, data: new Uint8ClampedArray(16) };
  paintPattern(p, lut, out);
  const px = (x: number, y: number) => out.data[(y * 2 + x) * 4];
  assert.deepEqual([px(0, 0), px(1, 0), px(0, 1), px(1, 1)], [255, 0, 128, 64]);
  assert.throws(() => paintPattern(p, lut, { width: 3, height: 3, data: new Uint8ClampedArray(36) }));
});

test("atlas bytes are [layer, head, query_bin, key_bin] and land in a head-column grid", () => {
  const [nLayers, nHeads, t] = [2, 3, 2];
  assert.equal(atlasOffset(nHeads, t, 1, 2), (1 * 3 + 2) * 4);
  const atlas = new Uint8Array(nLayers * nHeads * t * t);
  atlas[atlasOffset(nHeads, t, 1, 2) + 1 * t + 0] = 200; // layer 1, head 2, qbin 1, kbin 0
  const lut = buildLut([
    [0, "#000000"],
    [1, "#ffffff"],
  ]);
  const out = { width: nHeads * t, height: nLayers * t, data: new Uint8ClampedArray(nHeads * t * nLayers * t * 4) };
  paintAtlas(atlas, nLayers, nHeads, t, lut, out);
  const x = 2 * t + 0;
  const y = 1 * t + 1;
  assert.equal(out.data[(y * out.width + x) * 4], 200);
  const lit = [...out.data].filter((v, i) => i % 4 === 0 && v > 0);
  assert.equal(lit.length, 1);
  assert.equal(paintAtlas(atlas, nLayers, nHeads, t, lut, out), true);
  // an atlas short of its geometry (dropped, not arrived yet) leaves a blank sheet, never throws
  assert.equal(paintAtlas(atlas.subarray(1), nLayers, nHeads, t, lut, out), false);
  assert.ok(out.data.every((v) => v === 0));
});

test("atlas hit-testing is the inverse of cell placement", () => {
  const layout = atlasLayout(12, 12, 300);
  assert.equal(layout.width <= 300, true);
  for (const ref of [{ layer: 0, head: 0 }, { layer: 5, head: 11 }, { layer: 11, head: 3 }]) {
    const { x, y } = atlasCellOrigin(layout, ref);
    assert.deepEqual(atlasHeadAt(layout, x + layout.cell / 2, y + layout.cell / 2), ref);
  }
  assert.equal(atlasHeadAt(layout, 3, 40), null, "the layer label margin");
  assert.equal(atlasHeadAt(layout, 40, 3), null, "the head label margin");
  assert.equal(atlasHeadAt(layout, layout.width + 1, 40), null);
  assert.deepEqual(moveSelection({ layer: 0, head: 0 }, "ArrowRight", 2, 2), { layer: 0, head: 1 });
  assert.deepEqual(moveSelection({ layer: 0, head: 0 }, "ArrowUp", 2, 2), { layer: 0, head: 0 });
  assert.deepEqual(moveSelection({ layer: 0, head: 1 }, "ArrowDown", 2, 2), { layer: 1, head: 1 });
  assert.equal(moveSelection({ layer: 0, head: 0 }, "Enter", 2, 2), null);
});

test("pattern hit-testing and zoom arithmetic", () => {
  const full = fullView(1024);
  assert.deepEqual(cellAt(full, 512, 512, 0, 0), { query: 0, key: 0 });
  assert.deepEqual(cellAt(full, 512, 512, 511.9, 100.2), { query: 200, key: 1023 });
  assert.equal(cellAt(full, 512, 512, 512, 10), null);
  assert.equal(cellAt(full, 512, 512, -1, 10), null);
  const half = zoom(full, 1024, 0.5);
  assert.deepEqual(half, { x0: 256, y0: 256, size: 512 });
  assert.deepEqual(cellAt(half, 512, 512, 1.5, 3.5), { query: 259, key: 257 });
  assert.deepEqual(cellBox(half, 512, 512, { query: 259, key: 257 }), { x: 1, y: 3, w: 1, h: 1 });
  assert.equal(cellBox(half, 512, 512, { query: 0, key: 0 }), null);
  // zooming about a corner keeps that corner fixed; zoom never goes below 8 cells or past the edges
  assert.deepEqual(zoom(full, 1024, 0.25, 1, 1), { x0: 768, y0: 768, size: 256 });
  assert.equal(zoom(half, 1024, 0.001).size, 8);
  assert.deepEqual(zoom(half, 1024, 100), full);
  assert.deepEqual(pan(half, 1024, 10_000, -10_000), { x0: 512, y0: 0, size: 512 });
  assert.deepEqual(zoom(fullView(5), 5, 0.5), fullView(5), "short prompts do not zoom below their length");
});

test("whitespace gets a decorative glyph while the text stays exact", () => {
  const segs = tokenSegments(" a\n\tb");
  assert.deepEqual(segs, [
    { text: " ", glyph: "·" },
    { text: "a" },
    { text: "\n", glyph: "⏎" },
    { text: "\t", glyph: "→" },
    { text: "b" },
  ]);
  assert.equal(segs.map((s) => s.text).join(""), " a\n\tb");
  assert.deepEqual(tokenSegments("<img src=x>"), [{ text: "<img" }, { text: " ", glyph: "·" }, { text: "src=x>" }]);
  assert.deepEqual(tokenSegments(""), []);
});

test("control characters get visible stand-ins and the text stays exact", () => {
  const token = "a\x00\x07\x1b\x7f\x85b";
  const segs = tokenSegments(token);
  assert.equal(segs.map((s) => s.text).join(""), token);
  assert.deepEqual(segs.slice(1, 3), [{ text: "\x00", glyph: "NUL", control: true }, { text: "\x07", glyph: "BEL", control: true }]);
  assert.equal(displayToken(token), "a‹NUL›‹BEL›‹ESC›‹DEL›‹0x85›b");
  assert.equal(displayToken(" x\n\t\r"), "·x⏎→‹CR›");
  assert.equal(displayToken(" x\u00a0", false), " x␣", "quoted text keeps plain spaces");
  // what draws as itself is left alone: letters, emoji with joiners
  assert.equal(displayToken("👩‍💻 naïve"), "👩‍💻·naïve");
});

test("bidi controls a token opens are closed at its end; quoted tokens are isolates", () => {
  const rlo = "\u202e";
  const pdf = "\u202c";
  assert.equal(closeBidi(`ab${rlo}cd`), `ab${rlo}cd${pdf}`);
  assert.equal(closeBidi(`a${rlo}b${pdf}c`), `a${rlo}b${pdf}c`, "already closed");
  assert.equal(closeBidi(`\u2067x${rlo}y`), `\u2067x${rlo}y${pdf}${PDI}`, "innermost first");
  assert.equal(closeBidi("abc\u2069"), "abc\u2069", "a stray closer is left alone");
  assert.equal(quoteToken(" the"), '" the"');
  assert.equal(quoteToken("\x00"), '"‹NUL›"');
  assert.equal(isolatedToken(`ab${rlo}cd`), `${FSI}"ab${rlo}cd${pdf}"${PDI}`);
});

test("chips of one word stay together; whitespace starts a new word", () => {
  const tokens = ["<bos>", "T", "he", " ", "cat", " sat", ".", "\n", "x", ""];
  assert.deepEqual(
    tokens.map((_, i) => startsWord(tokens, i)),
    [true, false, false, true, true, true, false, true, true, true],
  );
});

test("axis labels thin out to every 2nd, 5th, 10th… position when rows are small", () => {
  assert.equal(labelStep(20, 11), 1);
  assert.equal(labelStep(11, 11), 1);
  assert.equal(labelStep(9.6, 11), 2);
  assert.equal(labelStep(3, 11), 5);
  assert.equal(labelStep(460 / 1024, 11), 50);
  assert.equal(labelStep(0, 11), Infinity);
  assert.deepEqual(labelPositions(0, 8, 1), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(labelPositions(256, 512, 50), [300, 350, 400, 450, 500, 550, 600, 650, 700, 750]);
  assert.deepEqual(labelPositions(0, 8, Infinity), []);
});

test("the tooltip goes beside its target and keeps clear of what it must not cover", () => {
  const bounds: Box = { left: 0, top: 0, right: 1000, bottom: 800 };
  const target: Box = { left: 100, top: 100, right: 120, bottom: 120 };
  const below = placeTooltip(200, 40, target, bounds, [], false);
  assert.deepEqual(below, { x: 100, y: 128 });
  // a heading under the target: the tooltip goes to the right instead
  const heading: Box = { left: 0, top: 125, right: 1000, bottom: 140 };
  const right = placeTooltip(200, 40, target, bounds, [{ box: heading, weight: 1 }], false);
  const box = (p: { x: number; y: number }): Box => ({ left: p.x, top: p.y, right: p.x + 200, bottom: p.y + 40 });
  assert.ok(!intersects(box(right), heading) && !intersects(box(right), target), JSON.stringify(right));
  // over the side panel it opens to the left first
  const inPanel: Box = { left: 500, top: 100, right: 520, bottom: 120 };
  assert.deepEqual(placeTooltip(200, 40, inPanel, bounds, [], true), { x: 292, y: 100 });
  // with no room on the left it falls back to below
  assert.deepEqual(placeTooltip(200, 40, target, bounds, [], true), { x: 100, y: 128 });
  // a heading under the target and a title above-left: it slides up along the right side
  const under: Box = { left: 0, top: 125, right: 1000, bottom: 140 };
  const title: Box = { left: 0, top: 60, right: 90, bottom: 75 };
  const keep = [under, title].map((b) => ({ box: b, weight: 1 }));
  assert.deepEqual(placeTooltip(200, 60, { left: 100, top: 80, right: 120, bottom: 120 }, bounds, keep, false), { x: 128, y: 60 });
  // at the right edge it stays inside the bounds and still off the target
  const edge: Box = { left: 950, top: 100, right: 970, bottom: 120 };
  const p = placeTooltip(200, 40, edge, bounds, [], false);
  assert.ok(p.x + 200 <= 996 && !intersects(box(p), edge), JSON.stringify(p));
});

test("chip text is black or white, whichever has at least 4.5:1 contrast on the colour", () => {
  const contrast = (a: number, b: number): number => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  for (const stops of [STOPS.light, STOPS.dark, DIVERGING.light, DIVERGING.dark]) {
    const lut = buildLut(stops);
    for (let i = 0; i < 256; i++) {
      const bg = luminance(lutColor(lut, i));
      const text = prefersDarkText(lutColor(lut, i)) ? 0 : 1;
      assert.ok(contrast(bg, text) >= 4.5, `entry ${i}: ${contrast(bg, text).toFixed(2)}`);
    }
  }
});
