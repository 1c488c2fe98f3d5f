import assert from "node:assert/strict";
import { test } from "node:test";
import { statusText } from "../../js/sidepanel/status";
import { runAction, type ActionTarget } from "../../js/state/actions";
import { Store } from "../../js/state/store";
import {
  clampToLength,
  clickToken,
  initialViewState as s0,
  leaveToken,
  pointCell,
  pointToken,
  setMode,
  tooltipPair,
  unlock,
} from "../../js/state/view-state";

const strongest = (mode: "query" | "key", i: number): number => (mode === "query" ? 0 : i + 1);

test("hover focuses a token until a click locks it; a second click or unlock releases it", () => {
  let s = pointToken(s0, 3);
  assert.deepEqual([s.focus, s.locked, s.hoverToken], [3, false, 3]);
  s = clickToken(s, 3);
  assert.deepEqual([s.focus, s.locked], [3, true]);
  s = pointToken(s, 5);
  assert.deepEqual([s.focus, s.hoverToken], [3, 5], "a locked focus stays");
  s = leaveToken(s);
  assert.deepEqual([s.focus, s.hoverToken], [3, null]);
  s = clickToken(s, 3);
  assert.equal(s.locked, false);
  s = clickToken(clickToken(s, 1), 2);
  assert.deepEqual([s.focus, s.locked], [2, true], "clicking another token moves the lock");
  s = unlock(pointToken(s, 4));
  assert.deepEqual([s.focus, s.locked], [4, false]);
  assert.equal(leaveToken(s).focus, null);
});

test("the tooltip pair follows the mode and the locked anchor", () => {
  let s = pointToken(s0, 4);
  assert.deepEqual(tooltipPair(s, strongest), { query: 4, key: 0 });
  s = setMode(s, "key");
  assert.deepEqual(tooltipPair(s, strongest), { query: 5, key: 4 });
  s = pointToken(clickToken(s, 2), 6);
  assert.deepEqual(tooltipPair(s, strongest), { query: 6, key: 2 });
  s = setMode(s, "query");
  assert.deepEqual(tooltipPair(s, strongest), { query: 2, key: 6 });
  assert.equal(tooltipPair(leaveToken(s), strongest), null);
});

test("pattern hover focuses the query row or key column; a new prompt clamps positions", () => {
  let s = pointCell(s0, { query: 7, key: 2 });
  assert.equal(s.focus, 7);
  s = pointCell(setMode(s, "key"), { query: 7, key: 2 });
  assert.equal(s.focus, 2);
  s = pointCell(s, null);
  assert.deepEqual([s.focus, s.hoverCell], [null, null]);
  s = clampToLength(pointCell(clickToken(s0, 9), { query: 9, key: 1 }), 5);
  assert.deepEqual([s.focus, s.locked, s.hoverToken, s.hoverCell], [null, false, null, null]);
});

test("the store notifies only on change", () => {
  const store = new Store(s0);
  const seen: number[] = [];
  const off = store.subscribe((s) => seen.push(s.focus ?? -1));
  store.set(store.get());
  store.set(pointToken(store.get(), 1));
  off();
  store.set(pointToken(store.get(), 2));
  assert.deepEqual(seen, [1]);
});

test("status text: run errors first, then head errors, running, loading, ready", () => {
  const base = { status: "ready" as const, error: "", headError: "", loading: false, note: "" };
  assert.deepEqual(statusText(base), { kind: "ready", text: "Ready" });
  assert.deepEqual(statusText({ ...base, note: "Induction probe: …" }), { kind: "ready", text: "Induction probe: …" });
  assert.equal(statusText({ ...base, note: "probe", status: "running" }).kind, "running");
  assert.equal(statusText({ ...base, loading: true }).kind, "loading");
  assert.equal(statusText({ ...base, status: "running" }).kind, "running");
  assert.deepEqual(statusText({ ...base, headError: "bad head" }), { kind: "error", text: "Error: bad head" });
  assert.deepEqual(statusText({ ...base, status: "error", error: "ValueError: too long", headError: "x" }), {
    kind: "error",
    text: "Error: ValueError: too long",
  });
});

test("host commands move the selection with wraparound, toggle the mode and focus the prompt", () => {
  const calls: string[] = [];
  const target = (layer: number, head: number, nLayers = 3, nHeads = 4): ActionTarget => ({
    layer,
    head,
    nLayers,
    nHeads,
    select: (l, h) => {
      calls.push(`select ${l} ${h}`);
      return true;
    },
    toggleMode: () => {
      calls.push("toggle");
    },
    focusPrompt: () => {
      calls.push("focus");
      return false;
    },
  });
  assert.equal(runAction("next-head", target(1, 3)), true);
  assert.equal(runAction("previous-head", target(1, 0)), true);
  assert.equal(runAction("next-layer", target(2, 1)), true);
  assert.equal(runAction("previous-layer", target(0, 1)), true);
  assert.equal(runAction("toggle-mode", target(0, 0)), true);
  assert.equal(runAction("focus-prompt", target(0, 0)), false, "the prompt box did not take the focus");
  assert.deepEqual(calls, ["select 1 0", "select 1 3", "select 0 1", "select 2 1", "toggle", "focus"]);
  assert.equal(runAction("next-head", target(0, 0, 0, 0)), false, "no heads: nothing to select");
});
