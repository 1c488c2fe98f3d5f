/**
 * Value-weighted attention in the browser (docs/value-weighted.md): which of the kernel's data
 * applies now. The kernel sends the selected layer's value norms `[head, key_pos]` float32
 * (`value_norms`, for `value_norms_layer` of run `value_norms_run_id`) and the value-weighted atlas
 * (`atlas_value_weighted`, for its run). The views weight the head they already hold with the
 * head's row of norms (state/reweight, `keyFactor`).
 */
import type { Traits } from "./traits";

/** Why the option cannot be used in a page without a kernel. */
export const STATIC_REASON = "static export: there is no kernel to compute value norms";

/** Whether the view shows value-weighted attention (on, and possible where it is shown). */
export function valueWeightedOn(t: Traits): boolean {
  return t.valueWeighted && !t.staticExport && t.valueWeightedReason === "";
}

/** Why the option is disabled ("" when it is not). */
export function valueWeightedReason(t: Traits): string {
  if (t.staticExport) return STATIC_REASON;
  return t.valueWeightedReason;
}

/** The norms arrived for `(runId, layer)`. */
export function normsReady(t: Traits, runId: number, layer: number): boolean {
  return t.valueNormsRunId === runId && t.valueNormsLayer === layer && t.nHeads > 0 && t.valueNorms.length === t.nHeads * t.tokens.length;
}

/** The value-weighted atlas of the current run arrived. */
export function atlasReady(t: Traits): boolean {
  return t.atlasValueWeightedRunId === t.runId && t.atlasValueWeighted.length === t.atlas.length && t.atlas.length > 0;
}

/** What the kernel is still computing while the option is on ("" when nothing). */
export function pendingText(t: Traits): string {
  if (!valueWeightedOn(t)) return "";
  if (!normsReady(t, t.runId, t.layer)) return "Computing value norms…";
  if (!atlasReady(t)) return "Computing the value-weighted atlas…";
  return "";
}

/**
 * Rows of the current norms, one `Float32Array` per head, kept while the kernel's bytes stay the
 * same object, so that a head's factor is the same array each time (state/reweight caches by it).
 */
export class HeadNorms {
  private source: unknown = null;
  private rows: Float32Array[] = [];

  /** The norms of `(runId, layer, head)`, or null while they have not arrived. */
  forHead(t: Traits, source: unknown, runId: number, layer: number, head: number): Float32Array | null {
    if (!normsReady(t, runId, layer) || head < 0 || head >= t.nHeads) return null;
    if (source !== this.source || this.rows.length !== t.nHeads) {
      this.source = source;
      const n = t.tokens.length;
      this.rows = Array.from({ length: t.nHeads }, (_, h) => t.valueNorms.slice(h * n, (h + 1) * n));
    }
    return this.rows[head];
  }
}
