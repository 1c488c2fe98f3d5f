/**
 * Ablation and patching results as the kernel sends them (docs/wire.md, `ablation_*` and
 * `patch_*` traits), decoded into checked tables. Pure functions: no DOM here.
 */
import { isolatedToken } from "../renderers/text";
import type { Traits } from "./traits";

export interface TopToken {
  readonly token: string;
  readonly prob: number;
}

export interface Ablation {
  readonly heads: readonly (readonly [number, number])[];
  readonly label: string;
  readonly seqLen: number;
  /** Loss of token `i` (NaN for the first token, which nothing predicts). */
  readonly clean: Float32Array;
  readonly ablated: Float32Array;
  readonly k: number;
  readonly topTokens: readonly string[];
  readonly topIds: Int32Array;
  readonly topProbs: Float32Array;
}

/** The ablation of the current run, or null when there is none, it is stale or malformed. */
export function ablationOf(t: Traits): Ablation | null {
  const n = t.tokens.length;
  if (t.ablationHeads.length === 0 || t.ablationRunId !== t.runId || n === 0) return null;
  if (t.ablationLoss.length !== 2 * n) return null;
  const k = t.ablationTopK;
  if (k < 0 || t.ablationTopIds.length !== 2 * n * k || t.ablationTopProbs.length !== 2 * n * k) return null;
  return {
    heads: t.ablationHeads,
    label: t.ablationLabel,
    seqLen: n,
    clean: t.ablationLoss.subarray(0, n),
    ablated: t.ablationLoss.subarray(n, 2 * n),
    k,
    topTokens: t.ablationTopTokens,
    topIds: t.ablationTopIds,
    topProbs: t.ablationTopProbs,
  };
}

/** Loss change of token `i`, ablated minus clean (NaN for the first token). */
export function lossChange(a: Ablation, i: number): number {
  return a.ablated[i] - a.clean[i];
}

/** Mean loss over the predicted tokens, clean and ablated, and their difference. */
export function totals(a: Ablation): { clean: number; ablated: number; change: number } {
  let clean = 0;
  let ablated = 0;
  let n = 0;
  for (let i = 0; i < a.seqLen; i++) {
    if (Number.isNaN(a.clean[i]) || Number.isNaN(a.ablated[i])) continue;
    clean += a.clean[i];
    ablated += a.ablated[i];
    n++;
  }
  if (n === 0) return { clean: NaN, ablated: NaN, change: NaN };
  return { clean: clean / n, ablated: ablated / n, change: (ablated - clean) / n };
}

/** The top next tokens predicted at `position`: row 0 clean, row 1 ablated. */
export function topNext(a: Ablation, position: number, which: "clean" | "ablated"): TopToken[] {
  if (position < 0 || position >= a.seqLen) return [];
  const base = ((which === "clean" ? 0 : 1) * a.seqLen + position) * a.k;
  const out: TopToken[] = [];
  for (let j = 0; j < a.k; j++) {
    const id = a.topIds[base + j];
    out.push({ token: a.topTokens[id] ?? "?", prob: a.topProbs[base + j] });
  }
  return out;
}

/** Largest absolute loss change over the tokens (the diverging scale's end), at least `floor`. */
export function changeScale(a: Ablation, floor = 1e-6): number {
  let max = floor;
  for (let i = 0; i < a.seqLen; i++) {
    const d = Math.abs(lossChange(a, i));
    if (d > max) max = d;
  }
  return max;
}

/**
 * Diverging LUT index of `value` on the scale `[-scale, scale]`: 128 is no change, 0 the most
 * negative, 255 the most positive; -1 (no colour) for NaN.
 */
export function divergingLevel(value: number, scale: number): number {
  if (Number.isNaN(value)) return -1;
  const f = Math.max(-1, Math.min(1, value / scale));
  return Math.round(127.5 + 127.5 * f);
}

/** Levels of every token's loss change, for {@link TokenView.paint}. */
export function lossLevels(a: Ablation): Int16Array {
  const scale = changeScale(a);
  const out = new Int16Array(a.seqLen);
  for (let i = 0; i < a.seqLen; i++) out[i] = divergingLevel(lossChange(a, i), scale);
  return out;
}

/**
 * What the ablation did to predicting token `i` (from the tokens before it), each number named:
 * `loss of predicting "n" (token 60): 1.232 → 3.252 (clean → ablated, +2.020)`. Null for the
 * first token, which nothing predicts.
 */
export function lossLine(a: Ablation, i: number, token: string): string | null {
  const d = lossChange(a, i);
  if (Number.isNaN(d)) return null;
  return (
    `loss of predicting ${isolatedToken(token)} (token ${i}): ` +
    `${a.clean[i].toFixed(3)} → ${a.ablated[i].toFixed(3)} (clean → ablated, ${signed(d)})`
  );
}

/** The line for a token without a loss (the first one). */
export function noLossLine(i: number, token: string): string {
  return `token ${i} ${isolatedToken(token)} is not predicted: no token comes before it`;
}

/** The heading of the next-token lists at position `i`. */
export function nextTokensTitle(i: number, token: string): string {
  return `next-token predictions after ${isolatedToken(token)} (token ${i}), clean and ablated:`;
}

export function signed(value: number, digits = 3): string {
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(digits)}`;
}

export function headList(heads: readonly (readonly [number, number])[]): string {
  return heads.map(([l, h]) => `L${l} H${h}`).join(", ");
}

export interface Patching {
  readonly nLayers: number;
  readonly nHeads: number;
  readonly effect: Float32Array;
}

/** The patching heatmap, or null before the first result or when its size is wrong. */
export function patchingOf(t: Traits): Patching | null {
  if (t.patchId === 0 || t.nLayers * t.nHeads === 0 || t.patchEffect.length !== t.nLayers * t.nHeads) return null;
  return { nLayers: t.nLayers, nHeads: t.nHeads, effect: t.patchEffect };
}

/** The `k` heads with the largest effect, largest first (NaN left out). */
export function topPatched(p: Patching, k: number): { layer: number; head: number; value: number }[] {
  const ranked: { layer: number; head: number; value: number }[] = [];
  p.effect.forEach((value, i) => {
    if (!Number.isNaN(value)) ranked.push({ layer: Math.floor(i / p.nHeads), head: i % p.nHeads, value });
  });
  ranked.sort((a, b) => b.value - a.value || a.layer - b.layer || a.head - b.head);
  return ranked.slice(0, k);
}

/** Add a head to the ablation set, or remove it if it is there; the set stays sorted. */
export function toggleHead(
  heads: readonly (readonly [number, number])[],
  layer: number,
  head: number,
): [number, number][] {
  const has = heads.some(([l, h]) => l === layer && h === head);
  const next: [number, number][] = heads.filter(([l, h]) => !(l === layer && h === head)).map(([l, h]) => [l, h]);
  if (!has) next.push([layer, head]);
  return next.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}
