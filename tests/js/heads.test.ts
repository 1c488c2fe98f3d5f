import assert from "node:assert/strict";
import { test } from "node:test";
import { HEAD_CACHE_SIZE, HeadHub, HeadLoader, type RequestHead } from "../../js/model/heads";
import type { HeadPattern } from "../../js/model/head";
import { LruCache } from "../../js/model/lru";

test("LRU evicts the least recently used entry", () => {
  const lru = new LruCache<string, number>(2);
  lru.set("a", 1);
  lru.set("b", 2);
  assert.equal(lru.get("a"), 1); // a is now the most recent
  lru.set("c", 3);
  assert.deepEqual(lru.keys(), ["a", "c"]);
  assert.equal(lru.get("b"), undefined);
  lru.set("a", 10);
  assert.deepEqual(lru.keys(), ["c", "a"]);
  assert.equal(lru.size, 2);
  assert.throws(() => new LruCache(0));
});

function headAnswer(requestId: string | number, runId: number, layer: number, head: number) {
  const content = { type: "head", request_id: requestId, run_id: runId, layer, head, seq_len: 1, packing: "tril" };
  return { content, buffers: [new DataView(new Float32Array([1]).buffer), new DataView(new Uint8Array([255]).buffer)] };
}

function setup(runId = { value: 1 }) {
  const sent: RequestHead[] = [];
  const hub = new HeadHub((m) => sent.push(m), () => runId.value, "v");
  const shown: HeadPattern[] = [];
  const errors: string[] = [];
  const loader = new HeadLoader(hub, { onHead: (p) => shown.push(p), onError: (e) => errors.push(e) });
  return { sent, hub, shown, errors, loader, runId };
}

test("requests carry fresh ids and answers to superseded requests are dropped", () => {
  const { sent, hub, shown, loader } = setup();
  assert.equal(loader.load(1, 0, 0), false);
  assert.equal(loader.load(1, 0, 1), false);
  assert.deepEqual(
    sent.map((m) => m.request_id),
    ["v-1", "v-2"],
  );
  assert.deepEqual(sent[1], { type: "request_head", request_id: "v-2", layer: 0, head: 1, selected: true });
  const stale = headAnswer("v-1", 1, 0, 0);
  hub.receive(stale.content, stale.buffers);
  assert.equal(shown.length, 0, "the answer to request 1 is stale");
  assert.ok(loader.pending);
  const fresh = headAnswer("v-2", 1, 0, 1);
  hub.receive(fresh.content, fresh.buffers);
  assert.deepEqual(shown.map((p) => [p.layer, p.head]), [[0, 1]]);
  assert.equal(loader.pending, false);
  // the stale answer still filled the cache (its run is current): no new request
  assert.equal(loader.load(1, 0, 0), true);
  assert.equal(sent.length, 2);
  assert.deepEqual(shown.map((p) => [p.layer, p.head]), [[0, 1], [0, 0]]);
});

test("answers of an older run are neither shown nor cached", () => {
  const { sent, hub, shown, loader, runId } = setup();
  loader.load(1, 2, 3);
  runId.value = 2;
  const old = headAnswer("v-1", 1, 2, 3);
  hub.receive(old.content, old.buffers);
  assert.equal(shown.length, 0);
  assert.equal(hub.cached(1, 2, 3), undefined);
  assert.equal(loader.load(2, 2, 3), false);
  assert.equal(sent.length, 2);
});

test("head errors reach only the view that asked", () => {
  const a = setup();
  const other = new HeadLoader(a.hub, { onHead: () => assert.fail(), onError: () => assert.fail("not mine") });
  a.loader.load(1, 9, 0);
  a.hub.receive({ type: "head_error", request_id: "v-1", message: "layer 9 is out of range" }, []);
  assert.deepEqual(a.errors, ["layer 9 is out of range"]);
  other.dispose();
  a.loader.dispose();
  const again = headAnswer("v-1", 1, 9, 0);
  a.hub.receive(again.content, again.buffers);
  assert.equal(a.shown.length, 0, "a disposed loader hears nothing");
});

test("the hub cache holds the most recent heads", () => {
  const { hub } = setup();
  for (let h = 0; h <= HEAD_CACHE_SIZE; h++) {
    const m = headAnswer(`v-${h + 1}`, 1, 0, h);
    hub.receive(m.content, m.buffers);
  }
  assert.equal(hub.cached(1, 0, 0), undefined);
  assert.ok(hub.cached(1, 0, HEAD_CACHE_SIZE));
});

test("a view shows only the head it asked for, by id, run, layer and head", () => {
  const { hub, shown, loader } = setup();
  // a view that is not waiting accepts nothing
  const unasked = headAnswer("v-1", 1, 0, 0);
  hub.receive(unasked.content, unasked.buffers);
  assert.equal(shown.length, 0);
  loader.load(1, 1, 2);
  for (const [id, layer, head] of [
    ["other-window-1", 1, 2], // another window's request: not ours
    [1, 1, 2], // a number where a string was asked
    [null, 1, 2],
    ["v-1", 0, 0], // our id, but another head than we asked for
  ] as const) {
    const m = headAnswer(id as string, 1, layer, head);
    hub.receive(m.content, m.buffers);
  }
  assert.equal(shown.length, 0);
  const mine = headAnswer("v-1", 1, 1, 2);
  hub.receive(mine.content, mine.buffers);
  assert.deepEqual(shown.map((p) => [p.layer, p.head]), [[1, 2]]);
});

test("ids of two hubs never collide, and a superseded answer is asked again once, unconditionally", () => {
  const a = new HeadHub(() => {}, () => 1, "aa");
  const b = new HeadHub(() => {}, () => 1, "bb");
  assert.notEqual(a.request(0, 0), b.request(0, 0));
  const { sent, hub, shown, loader } = setup();
  loader.load(1, 3, 1);
  hub.receive({ type: "head_superseded", request_id: "v-1" }, []);
  assert.deepEqual(sent[1], { type: "request_head", request_id: "v-2", layer: 3, head: 1, selected: false });
  hub.receive({ type: "head_superseded", request_id: "v-2" }, []);
  assert.equal(sent.length, 2, "never a loop");
  const m = headAnswer("v-2", 1, 3, 1);
  hub.receive(m.content, m.buffers);
  assert.equal(shown.length, 1);
});

test("a superseded answer to an older request costs nothing", () => {
  const { sent, hub, loader } = setup();
  loader.load(1, 9, 1); // w.layer = 9 arrives first
  loader.load(1, 9, 4); // then w.head = 4
  hub.receive({ type: "head_superseded", request_id: "v-1" }, []);
  assert.equal(sent.length, 2);
  assert.ok(loader.pending);
});
