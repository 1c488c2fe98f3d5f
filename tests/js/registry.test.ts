import assert from "node:assert/strict";
import { test } from "node:test";
import { actionForKey, ACTION_KEYS, mostRecent, REGISTRY_KEY, register, registry, subscribe, touch, type ViewEntry } from "../../js/registry";

function entry(id: string): Omit<ViewEntry, "usedAt"> {
  return {
    id,
    model: {},
    element: {} as HTMLElement,
    mountSidePanel: () => () => undefined,
    summary: () => ({ modelName: "m", prompt: "p", tokens: 1, layer: 0, head: 0 }),
    act: () => true,
    docked: true,
  };
}

test("the registry lives on the scope under a versioned key, one per scope", () => {
  const scope = {};
  const r = registry(scope);
  assert.equal(registry(scope), r);
  assert.equal((scope as Record<string, unknown>)[REGISTRY_KEY], r);
  assert.notEqual(registry({}), r);
  assert.equal(r.version, 1);
});

test("views come and go; subscribers hear each change; the last used is the most recent", () => {
  const r = registry({});
  let heard = 0;
  const stop = subscribe(r, () => heard++);
  const dropA = register(r, entry("a"));
  const dropB = register(r, entry("b"));
  assert.equal(heard, 2);
  assert.equal(mostRecent([...r.views.values()])?.id, "b"); // the newest first
  touch(r, "a");
  assert.equal(mostRecent([...r.views.values()])?.id, "a");
  touch(r, "a"); // already the most recent: no change to tell
  assert.equal(heard, 3);
  dropA();
  dropA(); // twice is harmless
  assert.deepEqual([...r.views.keys()], ["b"]);
  assert.equal(heard, 4);
  stop();
  dropB();
  assert.equal(heard, 4);
  assert.equal(r.views.size, 0);
  assert.equal(mostRecent([]), null);
});

test("Alt keys name the actions, by key code, without Shift", () => {
  for (const [action, code] of Object.entries(ACTION_KEYS)) assert.equal(actionForKey(code, false), action);
  assert.equal(actionForKey("ArrowRight", true), null);
  assert.equal(actionForKey("KeyZ", false), null);
});
