/**
 * Display reweighting of attention rows, in the browser only: the kernel's head stays as sent.
 *
 * "Hide BOS" gives key 0 (the BOS the model prepended) weight 0 and renormalizes each query row
 * to sum to 1 over the remaining keys. A row whose remaining mass is 0 (query 0, or a row that
 * put everything on BOS) stays 0. "Value-weighted" multiplies key `k` by its value norm
 * `‖v_k W_O[h]‖` (`keyFactor`, docs/value-weighted.md) before the same renormalization; both
 * options combine (their factors multiply).
 *
 * {@link reweightPattern} applies the options to a whole head and keeps the float rows
 * (`HeadPattern.exact`), so tooltips show exact renormalized values, not a second quantization.
 */
import { packedSize, rowLength, rowStart, type HeadPattern } from "../model/head";

export interface ReweightOptions {
  /** Key 0 gets weight 0 (only where the run's first token is the model's BOS). */
  readonly hideBos: boolean;
  /** Per-key factors of the head (`[key_pos]`: its value norms); absent or null: none. */
  readonly keyFactor?: Float32Array | null;
}

export const NO_REWEIGHT: ReweightOptions = { hideBos: false };

/** Whether the options change any weight. */
export function reweights(opts: ReweightOptions): boolean {
  return opts.hideBos || hasFactor(opts);
}

function hasFactor(opts: ReweightOptions): boolean {
  return opts.keyFactor !== undefined && opts.keyFactor !== null;
}

/** What a tooltip adds to a reweighted weight ("" when nothing is reweighted). */
export function reweightNote(opts: ReweightOptions): string {
  if (hasFactor(opts)) return opts.hideBos ? " (BOS hidden)" : "";
  return opts.hideBos ? " (BOS hidden, row renormalized)" : "";
}

/** The factor key `k` is multiplied by before the row is renormalized. */
function keyFactor(k: number, opts: ReweightOptions): number {
  const factor = opts.keyFactor !== undefined && opts.keyFactor !== null ? (opts.keyFactor[k] ?? 0) : 1;
  return opts.hideBos && k === 0 ? 0 : factor;
}

/** A number per distinct factor array, for the cache key (arrays are compared by identity). */
const factorIds = new WeakMap<Float32Array, number>();
let nextFactorId = 1;

function optionsKey(opts: ReweightOptions): string {
  const f = opts.keyFactor;
  if (f === undefined || f === null) return `${opts.hideBos}`;
  let id = factorIds.get(f);
  if (id === undefined) {
    id = nextFactorId++;
    factorIds.set(f, id);
  }
  return `${opts.hideBos}|${id}`;
}

/**
 * One query row, reweighted: `row[k] · f(k) / Σ_j row[j] · f(j)`; all zeros when that sum is 0.
 * Pure: `row` is not changed. Without options the row comes back as a copy, unchanged.
 */
export function reweightRow(row: ArrayLike<number>, opts: ReweightOptions): Float64Array {
  if (!reweights(opts)) return Float64Array.from(row);
  const out = new Float64Array(row.length);
  let sum = 0;
  for (let k = 0; k < row.length; k++) {
    const w = row[k] * keyFactor(k, opts);
    out[k] = w;
    sum += w;
  }
  if (!(sum > 0)) return out.fill(0);
  for (let k = 0; k < out.length; k++) out[k] /= sum;
  return out;
}

const cache = new WeakMap<HeadPattern, Map<string, HeadPattern>>();

/**
 * `p` with every row reweighted (`p` itself when the options change nothing). The result keeps
 * the exact float rows in `exact` and, for painting, the rows quantized again the wire's way
 * (per-row maximum, uint8 fractions). One result per head and options is kept, so that the
 * same object comes back (the pattern view keeps painted heads by object).
 */
export function reweightPattern(p: HeadPattern, opts: ReweightOptions): HeadPattern {
  if (!reweights(opts)) return p;
  const key = optionsKey(opts);
  let byOptions = cache.get(p);
  const hit = byOptions?.get(key);
  if (hit !== undefined) return hit;
  const size = packedSize(p.packing, p.seqLen);
  const exact = new Float32Array(size);
  const values = new Uint8Array(size);
  const scales = new Float32Array(p.seqLen);
  for (let q = 0; q < p.seqLen; q++) {
    const start = rowStart(p.packing, p.seqLen, q);
    const len = rowLength(p.packing, p.seqLen, q);
    const row = new Float64Array(len);
    for (let k = 0; k < len; k++) row[k] = (p.values[start + k] / 255) * p.scales[q];
    const out = reweightRow(row, opts);
    let max = 0;
    for (let k = 0; k < len; k++) max = Math.max(max, out[k]);
    scales[q] = max;
    for (let k = 0; k < len; k++) {
      exact[start + k] = out[k];
      values[start + k] = max > 0 ? Math.round((out[k] / max) * 255) : 0;
    }
  }
  const result: HeadPattern = { ...p, scales, values, exact };
  if (byOptions === undefined) {
    byOptions = new Map();
    cache.set(p, byOptions);
  }
  byOptions.set(key, result);
  return result;
}
