/**
 * The kernel's OV and direct-logit-attribution replies (docs/wire.md, "OV and direct logit
 * attribution"): parsed and validated here, and matched to the latest request of their kind so
 * that a stale reply (an older request, another run) is dropped.
 */

export interface Logit {
  readonly token: string;
  readonly value: number;
}

export interface OVReply {
  readonly kind: "ov";
  readonly requestId: string;
  readonly runId: number;
  readonly layer: number;
  readonly head: number;
  readonly position: number;
  readonly token: string;
  readonly raised: readonly Logit[];
  readonly lowered: readonly Logit[];
}

export interface DLAEntry {
  readonly token: string;
  /** The selected head's direct contribution to this token's logit. */
  readonly value: number;
  /** 1 + the number of heads whose contribution is larger. */
  readonly rank: number;
  /** The model's logit of this token at the position. */
  readonly logit: number;
}

export interface DLAReply {
  readonly kind: "dla";
  readonly requestId: string;
  readonly runId: number;
  readonly layer: number;
  readonly head: number;
  readonly position: number;
  readonly nHeads: number;
  readonly norm: string;
  /** The predicted token first, then the tokens asked for. */
  readonly entries: readonly DLAEntry[];
}

export interface OVError {
  readonly kind: "ov_error" | "dla_error";
  readonly requestId: string;
  readonly message: string;
  /** "token": the typed token was the problem (shown next to the input). */
  readonly field: string | null;
}

export type OVMessage = OVReply | DLAReply | OVError;
export type OVRequestKind = "ov" | "dla";

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function count(value: unknown): number | null {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : null;
}

function logits(value: unknown): Logit[] | null {
  if (!Array.isArray(value)) return null;
  const out: Logit[] = [];
  for (const item of value) {
    if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== "string") return null;
    const v = finite(item[1]);
    if (v === null) return null;
    out.push({ token: item[0], value: v });
  }
  return out;
}

function entries(value: unknown): DLAEntry[] | null {
  if (!Array.isArray(value)) return null;
  const out: DLAEntry[] = [];
  for (const item of value) {
    if (typeof item !== "object" || item === null) return null;
    const { token, value: v, rank, logit } = item as Record<string, unknown>;
    const [fv, fr, fl] = [finite(v), count(rank), finite(logit)];
    if (typeof token !== "string" || fv === null || fr === null || fl === null) return null;
    out.push({ token, value: fv, rank: fr, logit: fl });
  }
  return out;
}

/** A reply of ours, or null for any other message (or a malformed one). */
export function parseOVMessage(content: unknown): OVMessage | null {
  if (typeof content !== "object" || content === null) return null;
  const m = content as Record<string, unknown>;
  const requestId = m.request_id;
  if (typeof requestId !== "string") return null;
  if (m.type === "ov_error" || m.type === "dla_error") {
    const field = typeof m.field === "string" ? m.field : null;
    return { kind: m.type, requestId, message: String(m.message ?? "unknown error"), field };
  }
  const [runId, layer, head, position] = [count(m.run_id), count(m.layer), count(m.head), count(m.position)];
  if (runId === null || layer === null || head === null || position === null) return null;
  if (m.type === "ov") {
    const [raised, lowered] = [logits(m.raised), logits(m.lowered)];
    if (raised === null || lowered === null || typeof m.token !== "string") return null;
    return { kind: "ov", requestId, runId, layer, head, position, token: m.token, raised, lowered };
  }
  if (m.type === "dla") {
    const list = entries(m.entries);
    const nHeads = count(m.n_heads);
    if (list === null || nHeads === null) return null;
    return { kind: "dla", requestId, runId, layer, head, position, nHeads, norm: String(m.norm ?? ""), entries: list };
  }
  return null;
}

/** Request ids per kind; only the latest request of a kind is answered on screen. */
export class LatestRequests {
  private counter = 0;
  private readonly latest: Record<OVRequestKind, string | null> = { ov: null, dla: null };

  constructor(private readonly prefix: string) {}

  /** A new id for `kind`; replies to earlier ones are stale from now on. */
  next(kind: OVRequestKind): string {
    const id = `${this.prefix}-${kind}-${++this.counter}`;
    this.latest[kind] = id;
    return id;
  }

  /** True when `message` answers the latest request of its kind (which is then settled). */
  accept(message: OVMessage): boolean {
    const kind: OVRequestKind = message.kind === "ov" || message.kind === "ov_error" ? "ov" : "dla";
    if (this.latest[kind] !== message.requestId) return false;
    this.latest[kind] = null;
    return true;
  }

  pending(kind: OVRequestKind): boolean {
    return this.latest[kind] !== null;
  }

  /** Forget every request (a new run, another head): late replies are dropped. */
  reset(): void {
    this.latest.ov = null;
    this.latest.dla = null;
  }
}

/** A logit as shown: sign always, three decimals. */
export function signed(value: number): string {
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(3)}`;
}
