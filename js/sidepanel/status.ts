/** The status line: running / ready / errors, announced politely to screen readers. */
import type { RunStatus } from "../model/traits";
import { h } from "../renderers/dom";

export interface StatusInput {
  status: RunStatus;
  error: string;
  headError: string;
  loading: boolean;
  /** A line the kernel attached to the current run (the induction probe's summary). */
  note: string;
  /** Fraction of heads patched while activation patching runs, else -1. */
  patchProgress?: number;
  /** The kernel is gone (restarted, shut down, comm closed). */
  disconnected?: boolean;
  /** A prompt of this view waiting for the one that runs, or null. */
  queued?: string | null;
}

/** What the status line says once the kernel is gone. */
export const DISCONNECTED =
  "Kernel restarted or disconnected: run the cell again. Hover and zoom still work on what is shown.";

export type StatusKind = "ready" | "running" | "loading" | "error";

/** The text and kind the status line shows (run errors first, then head errors). */
export function statusText(s: StatusInput): { kind: StatusKind; text: string } {
  if (s.disconnected === true) return { kind: "error", text: DISCONNECTED };
  if (s.status === "error" || s.error !== "") {
    return { kind: "error", text: `Error: ${s.error || "the last run failed"}` };
  }
  if (s.headError !== "") return { kind: "error", text: `Error: ${s.headError}` };
  const p = s.patchProgress ?? -1;
  if (s.status === "running" && p >= 0) {
    return { kind: "running", text: `Patching every head… ${Math.round(p * 100)} % (the last result stays on screen)` };
  }
  const queued = s.queued ?? null;
  if (queued !== null) {
    const shown = queued.length > 40 ? `${queued.slice(0, 40)}…` : queued;
    return { kind: "running", text: `Running the model… queued next: “\u2068${shown}\u2069”` };
  }
  if (s.status === "running") return { kind: "running", text: "Running the model… (the last result stays on screen)" };
  if (s.loading) return { kind: "loading", text: "Loading head…" };
  return { kind: "ready", text: s.note || "Ready" };
}

export class StatusLine {
  readonly el: HTMLElement;
  private readonly text: HTMLElement;

  constructor() {
    this.el = h("div", "hs-status");
    this.el.setAttribute("role", "status");
    this.el.setAttribute("aria-live", "polite");
    this.text = h("span", "hs-status-text");
    this.el.append(h("span", "hs-status-dot"), this.text);
  }

  update(input: StatusInput): void {
    const { kind, text } = statusText(input);
    this.el.dataset.kind = kind;
    this.text.textContent = text;
  }
}
