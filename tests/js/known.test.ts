import assert from "node:assert/strict";
import { test } from "node:test";
import { knownRows } from "../../js/sidepanel/known";

const builtin = [
  { role: "previous_token", layer: 0, head: 6 },
  { role: "previous_token", layer: 0, head: 2 },
  { role: "previous_token", layer: 0, head: 3 },
  { role: "previous_token", layer: 0, head: 7 },
  { role: "induction", layer: 1, head: 0 },
];

test("known heads: one row per role in order, the first of several marked as the strongest", () => {
  const rows = knownRows(builtin);
  assert.deepEqual(rows.map((r) => r.role), ["previous_token", "induction"]);
  assert.deepEqual(rows[0].heads.map((b) => b.text), ["L0 H6 (strongest)", "L0 H2", "L0 H3", "L0 H7"]);
  assert.deepEqual(rows[0].heads.map((b) => b.strongest), [true, false, false, false]);
  assert.equal(rows[0].heads[0].name, "Open layer 0, head 6 (previous_token, the strongest of 4)");
  assert.equal(rows[0].heads[1].name, "Open layer 0, head 2 (previous_token)");
  assert.equal(rows[0].title, "previous_token: 4 heads, strongest first");
  // a role with one head has nothing to rank
  assert.deepEqual(rows[1].heads, [
    { layer: 1, head: 0, strongest: false, text: "L1 H0", name: "Open layer 1, head 0 (induction)" },
  ]);
  assert.equal(rows[1].title, "induction");
});

test("known heads: roles are shown as given, underscores and all", () => {
  const rows = knownRows([
    { role: "name_mover", layer: 9, head: 9 },
    { role: "S-inhibition  head", layer: 7, head: 3 },
    { role: "<b>x</b>", layer: 0, head: 0 },
  ]);
  assert.deepEqual(rows.map((r) => r.role), ["name_mover", "S-inhibition  head", "<b>x</b>"]);
  assert.equal(rows[0].heads[0].name, "Open layer 9, head 9 (name_mover)");
});

test("known heads: roles group wherever they appear, and a repeated head shows once", () => {
  const rows = knownRows([
    { role: "induction", layer: 5, head: 5 },
    { role: "previous_token", layer: 4, head: 11 },
    { role: "induction", layer: 6, head: 9 },
    { role: "induction", layer: 5, head: 5 },
  ]);
  assert.deepEqual(rows.map((r) => [r.role, r.heads.map((b) => b.text)]), [
    ["induction", ["L5 H5 (strongest)", "L6 H9"]],
    ["previous_token", ["L4 H11"]],
  ]);
  assert.deepEqual(knownRows([]), []);
});
