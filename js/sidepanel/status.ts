/** The status line: running / ready / errors, announced politely to screen readers. */
import type { RunStatus } from "../model/traits";
import { TEXT_TRANSPORT_HINT } from "../model/transport";
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
  /** The host drops binary data, so the kernel sends it as text (a hover hint says so). */
  textTransport?: boolean;
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
    const hint = input.textTransport === true ? TEXT_TRANSPORT_HINT : "";
    if (this.el.title !== hint) this.el.title = hint;
    this.el.dataset.transport = input.textTransport === true ? "text" : "binary";
  }
}

/** The side-panel actions that can fail in the kernel. */
export type ActionOrigin = "run" | "probe" | "scores" | "ablate" | "patch" | "generate";

/** What the tracker reads of the traits. */
export interface ActionTraits {
  readonly status: RunStatus;
  readonly error: string;
}

/** An error to show next to the control whose action caused it. */
export interface ActionFailure {
  readonly origin: ActionOrigin;
  readonly text: string;
}

/**
 * Which side-panel action the kernel's current error belongs to. The view tells it what it sent
 * ({@link sent}) and shows it every trait change ({@link observe}); `mark` is a summary of the
 * results an action changes when it succeeds (run, ablation, patching and score ids).
 *
 * An error is the action's when it comes after the action was sent: the kernel reported
 * "running" since, or the error text changed. The action is done (and forgotten, so that a later
 * error from Python is not blamed on it) when the kernel is ready again without an error after
 * "running", or a result changed. The shown error goes when the kernel's error goes (the action
 * or another one succeeded) or when an action is sent again.
 */
export class ActionTracker {
  private pending: { origin: ActionOrigin; errorAtSend: string; mark: string; sawRunning: boolean } | null = null;
  private shown: ActionFailure | null = null;

  sent(origin: ActionOrigin, t: ActionTraits, mark: string): void {
    this.pending = { origin, errorAtSend: t.status === "error" || t.error !== "" ? t.error : "", mark, sawRunning: false };
    this.shown = null;
  }

  observe(t: ActionTraits, mark: string): ActionFailure | null {
    const failed = t.status === "error" || t.error !== "";
    const p = this.pending;
    if (p !== null) {
      if (t.status === "running") {
        p.sawRunning = true;
      } else if (failed && (p.sawRunning || t.error !== p.errorAtSend)) {
        this.shown = { origin: p.origin, text: t.error || "the last action failed" };
        this.pending = null;
      } else if (!failed && (p.sawRunning || mark !== p.mark)) {
        this.pending = null;
      }
    }
    if (this.shown !== null && (!failed || (t.error !== "" && t.error !== this.shown.text))) this.shown = null;
    return this.shown;
  }
}

/** An error line right under a control: role="alert", text only, hidden while empty. */
export class ActionError {
  readonly el: HTMLElement;

  constructor() {
    this.el = h("p", "hs-action-error");
    this.el.setAttribute("role", "alert");
    this.el.hidden = true;
  }

  /** Show `text` ("" hides it); a newly shown error is scrolled into view if it is not. */
  set(text: string): void {
    if (this.el.textContent === text && this.el.hidden === (text === "")) return;
    const appearing = this.el.hidden && text !== "";
    this.el.textContent = text;
    this.el.hidden = text === "";
    if (appearing) this.el.scrollIntoView({ block: "nearest" });
  }
}
