import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ablationOf,
  changeScale,
  divergingLevel,
  lossLevels,
  lossLine,
  nextTokensTitle,
  noLossLine,
  patchingOf,
  toggleHead,
  topNext,
  topPatched,
  totals,
} from "../../js/model/interventions";
import { readTraits } from "../../js/model/traits";
import type { AnyModel } from "../../js/model/anywidget";
import { ActionTracker, statusText } from "../../js/sidepanel/status";

function le(values: number[], kind: "f32" | "i32"): DataView {
  const buf = new ArrayBuffer(values.length * 4 + 3);
  const view = new DataView(buf, 3, values.length * 4); // a nonzero byteOffset, like comm buffers
  values.forEach((v, i) => (kind === "f32" ? view.setFloat32(i * 4, v, true) : view.setInt32(i * 4, v, true)));
  return view;
}

function model(state: Record<string, unknown>): AnyModel {
  return {
    get: (name: string) => state[name],
    set: () => undefined,
    save_changes: () => undefined,
    send: () => undefined,
    on: () => undefined,
    off: () => undefined,
  };
}

const base = {
  tokens: ["<bos>", "a", "b"],
  run_id: 4,
  n_layers: 2,
  n_heads: 2,
  ablation_heads: [[1, 0]],
  ablation_label: "zero",
  ablation_run_id: 4,
  ablation_loss: le([NaN, 1, 2, NaN, 1.5, 1], "f32"),
  ablation_top_k: 2,
  ablation_top_tokens: ["x", "y", "<b>"],
  // [2, 3, 2]: clean rows then ablated rows
  ablation_top_ids: le([0, 1, 1, 0, 2, 0, 1, 2, 2, 1, 0, 1], "i32"),
  ablation_top_probs: le([0.6, 0.3, 0.5, 0.4, 0.9, 0.1, 0.7, 0.2, 0.5, 0.5, 0.8, 0.1], "f32"),
};

test("an ablation decodes per-token loss, totals and the top next tokens", () => {
  const a = ablationOf(readTraits(model(base)));
  assert.ok(a !== null);
  assert.deepEqual(Array.from(a.clean).slice(1), [1, 2]);
  const t = totals(a);
  assert.equal(t.clean, 1.5);
  assert.equal(t.ablated, 1.25);
  assert.equal(t.change, -0.25);
  assert.equal(changeScale(a), 1);
  assert.deepEqual(Array.from(lossLevels(a)), [-1, 191, 0]);
  // each number says what it is: the loss of predicting token 1, clean then ablated
  assert.equal(lossLine(a, 1, "a"), 'loss of predicting \u2068"a"\u2069 (token 1): 1.000 → 1.500 (clean → ablated, +0.500)');
  assert.equal(lossLine(a, 0, "<bos>"), null);
  assert.equal(noLossLine(0, "<bos>"), 'token 0 \u2068"<bos>"\u2069 is not predicted: no token comes before it');
  assert.equal(nextTokensTitle(2, "\x00"), 'next-token predictions after \u2068"‹NUL›"\u2069 (token 2), clean and ablated:');
  assert.deepEqual(topNext(a, 2, "clean").map((x) => x.token), ["<b>", "x"]);
  assert.deepEqual(topNext(a, 0, "ablated").map((x) => x.token), ["y", "<b>"]);
  assert.ok(Math.abs(topNext(a, 0, "ablated")[0].prob - 0.7) < 1e-6);
});

test("a stale or malformed ablation is not shown", () => {
  assert.equal(ablationOf(readTraits(model({ ...base, ablation_run_id: 3 }))), null);
  assert.equal(ablationOf(readTraits(model({ ...base, ablation_heads: [] }))), null);
  assert.equal(ablationOf(readTraits(model({ ...base, ablation_loss: le([1, 2], "f32") }))), null);
  assert.equal(ablationOf(readTraits(model({ ...base, ablation_top_k: 3 }))), null);
  assert.deepEqual(readTraits(model({ ...base, ablation_heads: [[1, 0], "x", [2]] })).ablationHeads, [[1, 0]]);
});

test("the diverging scale puts zero in the middle and clamps", () => {
  assert.equal(divergingLevel(0, 1), 128);
  assert.equal(divergingLevel(-1, 1), 0);
  assert.equal(divergingLevel(5, 1), 255);
  assert.equal(divergingLevel(NaN, 1), -1);
});

test("patching: heatmap size is checked and the best heads come first", () => {
  const t = readTraits(model({ ...base, patch_id: 1, patch_effect: le([0.1, NaN, 0.9, -0.2], "f32") }));
  const p = patchingOf(t);
  assert.ok(p !== null);
  assert.deepEqual(topPatched(p, 2), [
    { layer: 1, head: 0, value: Number(Math.fround(0.9)) },
    { layer: 0, head: 0, value: Number(Math.fround(0.1)) },
  ]);
  assert.equal(patchingOf(readTraits(model({ ...base, patch_id: 0, patch_effect: le([1, 2, 3, 4], "f32") }))), null);
  assert.equal(patchingOf(readTraits(model({ ...base, patch_id: 2, patch_effect: le([1, 2], "f32") }))), null);
});

test("the ablation set toggles heads and stays sorted", () => {
  let heads = toggleHead([], 1, 3);
  heads = toggleHead(heads, 0, 2);
  assert.deepEqual(heads, [[0, 2], [1, 3]]);
  assert.deepEqual(toggleHead(heads, 1, 3), [[0, 2]]);
});

test("the status line reports patching progress", () => {
  const s = { status: "running" as const, error: "", headError: "", loading: false, note: "", patchProgress: 0.5 };
  assert.match(statusText(s).text, /Patching every head… 50 %/);
  assert.match(statusText({ ...s, patchProgress: -1 }).text, /Running the model/);
  assert.equal(statusText({ ...s, status: "error", error: "ValueError: bad" }).text, "Error: ValueError: bad");
});

test("known heads are read as {role, layer, head}; malformed entries are dropped", () => {
  const known = [
    { role: "induction", layer: 1, head: 0 },
    { role: "", layer: 0, head: 0 },
    { role: "x", layer: 0.5, head: 0 },
    ["induction", 1, 0],
    null,
    { role: "previous_token", layer: 0, head: 6 },
  ];
  assert.deepEqual(readTraits(model({ ...base, known_heads: known })).knownHeads, [
    { role: "induction", layer: 1, head: 0 },
    { role: "previous_token", layer: 0, head: 6 },
  ]);
  assert.deepEqual(readTraits(model({ ...base, known_heads: "induction" })).knownHeads, []);
  assert.deepEqual(readTraits(model(base)).knownHeads, []);
});

test("a kernel error is shown next to the action that caused it, and only that one", () => {
  const ready = { status: "ready" as const, error: "" };
  const running = { status: "running" as const, error: "" };
  const failed = (error: string) => ({ status: "error" as const, error });
  const t = new ActionTracker();
  assert.equal(t.observe(ready, "m0"), null);
  // patch sent, the kernel runs it and fails
  t.sent("patch", ready, "m0");
  assert.equal(t.observe(ready, "m0"), null, "before the kernel answers");
  assert.equal(t.observe(running, "m0"), null);
  assert.deepEqual(t.observe(failed("ValueError: lengths"), "m0"), { origin: "patch", text: "ValueError: lengths" });
  // retried: cleared at once; the same error after "running" shows again
  t.sent("patch", failed("ValueError: lengths"), "m0");
  assert.equal(t.observe(failed("ValueError: lengths"), "m0"), null, "the old error is not the new answer");
  t.observe(running, "m0");
  assert.equal(t.observe(failed("ValueError: lengths"), "m0")?.origin, "patch");
  // a later success (another result) clears it
  assert.equal(t.observe(ready, "m1"), null);
  // an answer without a visible "running" (a synchronous kernel) counts when the error text is new
  t.sent("ablate", ready, "m1");
  assert.deepEqual(t.observe(failed("ValueError: empty reference"), "m1"), { origin: "ablate", text: "ValueError: empty reference" });
  // a score request fails without changing the status
  t.sent("scores", ready, "m1");
  assert.deepEqual(t.observe({ status: "ready", error: "scores failed: boom" }, "m1"), { origin: "scores", text: "scores failed: boom" });
  // a run that succeeded is forgotten, so a later error from Python is not blamed on it
  t.sent("run", ready, "m1");
  assert.equal(t.observe(ready, "m2"), null);
  assert.equal(t.observe(failed("TypeError: from a notebook cell"), "m2"), null);
});
