/**
 * One view's side of the kernel link: head selections, prompts (through the view's queue),
 * side-panel actions with the origin of their errors, the kernel's count of open views, and
 * what the view may do once the kernel is gone.
 */
import type { Channel } from "../model/channel";
import { randomToken } from "../model/channel";
import { RunQueue } from "../model/runs";
import type { Traits } from "../model/traits";
import { ActionTracker, type ActionFailure, type ActionOrigin } from "../sidepanel/status";

/** The side-panel section each kernel message comes from (runs go through the prompt queue). */
const ACTION_ORIGINS = {
  probe: "probe",
  request_scores: "scores",
  ablate: "ablate",
  clear_ablation: "ablate",
  patch: "patch",
  generate: "generate",
} as const satisfies Record<string, ActionOrigin>;

export type ActionMessage = { type: keyof typeof ACTION_ORIGINS } & Record<string, unknown>;

export interface SessionEvents {
  /** A prompt of this view finished, or the queue changed. */
  runsChanged(): void;
  /** The kernel is gone; `waiting` is the prompt that was queued (or null). */
  disconnected(waiting: string | null): void;
}

/** What changes when an action succeeds: run, ablation, patching and score ids. */
function resultMark(t: Traits): string {
  return `${t.runId}|${t.ablationRunId}|${t.ablationHeads.join(";")}|${t.patchId}|${t.scoresRunId}`;
}

export class KernelSession {
  /** This view's random id: element ids, request ids and the kernel's count of open views. */
  readonly viewId = randomToken();
  readonly runs: RunQueue;
  private readonly actions = new ActionTracker();
  private readonly unlisten: (() => void)[];

  constructor(
    private readonly channel: Channel,
    events: SessionEvents,
  ) {
    this.runs = new RunQueue(this.viewId, (request) => channel.send(request));
    this.unlisten = [
      channel.onCustom((content) => {
        if (this.runs.receive(content)) events.runsChanged();
      }),
      channel.onConnection(() => events.disconnected(this.runs.reset())),
    ];
    channel.send({ type: "view", view: this.viewId, open: true });
  }

  get live(): boolean {
    return this.channel.live;
  }

  /** True while the widget has a model and its kernel answers: the panel's actions work. */
  canRun(t: Traits): boolean {
    return t.canRun && this.channel.live;
  }

  /** Why the prompt box cannot run now ("" when it can). */
  promptBlocked(t: Traits): string {
    if (t.staticExport) {
      return "Static export: no kernel to re-run the model. Run headscope.show(model, prompt) in a notebook for a live widget.";
    }
    if (!t.canRun) {
      return "Precomputed attention: there is no model to re-run. Use headscope.show(model, prompt) for a live widget.";
    }
    return this.channel.live ? "" : "The kernel is gone: run the cell again to get a live widget.";
  }

  /** Select a head (atlas, known heads, top heads, patching heatmap); false if impossible. */
  select(layer: number, head: number): boolean {
    return this.channel.save({ layer, head });
  }

  /** Run `prompt` now, or after this view's running prompt. */
  submit(prompt: string, t: Traits): void {
    this.actions.sent("run", t, resultMark(t));
    this.runs.submit(prompt);
  }

  /** Send a side-panel action, remembering where it came from. */
  send(message: ActionMessage, t: Traits): void {
    this.actions.sent(ACTION_ORIGINS[message.type], t, resultMark(t));
    this.channel.send(message);
  }

  /** The error of this view's last action, to show next to its control (or null). */
  failure(t: Traits): ActionFailure | null {
    return this.actions.observe(t, resultMark(t));
  }

  dispose(): void {
    this.channel.send({ type: "view", view: this.viewId, open: false });
    for (const stop of this.unlisten) stop();
  }
}
