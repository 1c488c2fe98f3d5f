import assert from "node:assert/strict";
import { test } from "node:test";
import { LatestRequests, parseOVMessage, signed } from "../../js/model/ov";

const ov = {
  type: "ov", request_id: "v-ov-1", run_id: 3, layer: 1, head: 0, position: 5, token: " a",
  raised: [["a", 1.5], ["<b>", 0.25]], lowered: [["\u202e", -2]],
};
const dla = {
  type: "dla", request_id: "v-dla-2", run_id: 3, layer: 1, head: 0, position: 5, n_heads: 16, norm: "LN",
  entries: [{ token: "n", value: 0.5, rank: 3, logit: 9 }],
};

test("ov replies: lists of (token, logit) pairs, token strings kept exactly", () => {
  const m = parseOVMessage(ov);
  assert.ok(m !== null && m.kind === "ov");
  assert.equal(m.token, " a");
  assert.deepEqual(m.raised, [{ token: "a", value: 1.5 }, { token: "<b>", value: 0.25 }]);
  assert.deepEqual(m.lowered, [{ token: "\u202e", value: -2 }]);
});

test("dla replies and errors parse; malformed or foreign messages do not", () => {
  const d = parseOVMessage(dla);
  assert.ok(d !== null && d.kind === "dla");
  assert.deepEqual(d.entries, [{ token: "n", value: 0.5, rank: 3, logit: 9 }]);
  assert.equal(d.nHeads, 16);
  assert.deepEqual(parseOVMessage({ type: "dla_error", request_id: "x", message: "bad", field: "token" }), {
    kind: "dla_error", requestId: "x", message: "bad", field: "token",
  });
  assert.equal(parseOVMessage({ type: "head", request_id: "x" }), null);
  assert.equal(parseOVMessage({ ...ov, raised: [["a", "1.5"]] }), null);
  assert.equal(parseOVMessage({ ...ov, raised: [["a", Number.NaN]] }), null);
  assert.equal(parseOVMessage({ ...ov, request_id: 7 }), null);
  assert.equal(parseOVMessage({ ...dla, entries: [{ token: "n", value: 1, rank: -1, logit: 0 }] }), null);
  assert.equal(parseOVMessage(null), null);
});

test("only the latest request of a kind is accepted, once; reset drops everything", () => {
  const r = new LatestRequests("v");
  const first = r.next("ov");
  const second = r.next("ov");
  const d = r.next("dla");
  assert.notEqual(first, second);
  const reply = (id: string) => parseOVMessage({ ...ov, request_id: id })!;
  assert.equal(r.accept(reply(first)), false); // superseded
  assert.equal(r.pending("ov"), true);
  assert.equal(r.accept(reply(second)), true);
  assert.equal(r.accept(reply(second)), false); // settled
  assert.equal(r.pending("ov"), false);
  assert.equal(r.pending("dla"), true);
  r.reset();
  assert.equal(r.accept(parseOVMessage({ ...dla, request_id: d })!), false);
});

test("logits show with a sign and three decimals", () => {
  assert.equal(signed(1.23456), "+1.235");
  assert.equal(signed(-0.5), "−0.500");
  assert.equal(signed(0), "+0.000");
});
