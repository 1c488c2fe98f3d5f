import assert from "node:assert/strict";
import { test } from "node:test";
import { RunQueue, type RunRequest } from "../../js/model/runs";
import { statusText } from "../../js/sidepanel/status";

function setup(accept = true) {
  const sent: RunRequest[] = [];
  const queue = new RunQueue("v", (r) => {
    sent.push(r);
    return accept;
  });
  return { sent, queue };
}

const done = (id: string) => ({ type: "run_done", request_id: id, ok: true, superseded: false });

test("a prompt submitted while another runs waits; a newer one replaces it and the replaced one is sent along", () => {
  const { sent, queue } = setup();
  queue.submit("A");
  queue.submit("B");
  queue.submit("C");
  assert.deepEqual(sent.map((r) => r.prompt), ["A"]);
  assert.equal(queue.waiting, "C");
  assert.equal(queue.receive(done("other-run-1")), false, "another view's answer is not ours");
  assert.equal(queue.receive(done("v-run-1")), true);
  assert.deepEqual(sent[1], { type: "run", prompt: "C", request_id: "v-run-2", superseded: ["B"] });
  assert.equal(queue.waiting, null);
  assert.ok(queue.busy);
  queue.receive({ ...done("v-run-2"), ok: false });
  assert.equal(queue.busy, false);
  queue.submit("D");
  assert.deepEqual(sent[2].superseded, []);
});

test("a request that cannot be sent leaves nothing in flight; reset hands back the waiting prompt", () => {
  const refused = setup(false);
  refused.queue.submit("A");
  assert.equal(refused.queue.busy, false);
  const { queue } = setup();
  queue.submit("A");
  queue.submit("B");
  assert.equal(queue.reset(), "B");
  assert.equal(queue.busy, false);
});

test("the status line says what is queued, isolated, and that the kernel is gone", () => {
  const base = { status: "running" as const, error: "", headError: "", loading: false, note: "" };
  const queued = statusText({ ...base, queued: "\u202eevil" });
  assert.match(queued.text, /queued next: “\u2068\u202eevil\u2069”/);
  const gone = statusText({ ...base, status: "ready", disconnected: true });
  assert.equal(gone.kind, "error");
  assert.match(gone.text, /Kernel restarted or disconnected: run the cell again/);
});
