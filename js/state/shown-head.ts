/**
 * The head in the pattern view: the request for the selected head (only the latest answer is
 * drawn), and that head drawn as the display reweights it (hide BOS, value-weighted).
 */
import type { AnyModel } from "../model/anywidget";
import type { HeadPattern } from "../model/head";
import { HeadLoader, headKey, type HeadHub } from "../model/heads";
import type { Traits } from "../model/traits";
import { bytesSource } from "../model/transport";
import { HeadNorms, normsReady, valueWeightedOn } from "../model/value-norms";
import { lutFor, type Theme } from "../renderers/lut";
import type { PatternView } from "../renderers/pattern";
import type { PairContext } from "../renderers/tooltip";
import { reweightNote, reweightPattern, type ReweightOptions } from "./reweight";
import type { ViewState } from "./view-state";

export interface ShownHeadHost {
  traits(): Traits;
  state(): ViewState;
  theme(): Theme;
  /** Whether the kernel answers (nobody will send a head once it is gone). */
  live(): boolean;
  /** A head was drawn: the tokens and the status line follow. */
  drawn(): void;
  /** What the status line says changed (loading, the head's error). */
  statusChanged(): void;
}

export class ShownHead {
  private readonly loader: HeadLoader;
  private shown: HeadPattern | null = null;
  private wanted = "";
  private headError = "";
  /** Value-weighting: the shown head's norms by head, and what the pattern was last drawn with. */
  private readonly headNorms = new HeadNorms();
  private valueWeightKey = "";
  private valueWeightSource: unknown = null;

  constructor(
    private readonly model: AnyModel,
    hub: HeadHub,
    private readonly pattern: PatternView,
    private readonly host: ShownHeadHost,
  ) {
    this.loader = new HeadLoader(hub, {
      onHead: (p) => this.show(p),
      onError: (message) => {
        this.headError = message;
        host.statusChanged();
      },
    });
  }

  /** The kernel's error for the requested head ("" when none). */
  get error(): string {
    return this.headError;
  }

  /** Whether a requested head has not arrived yet. */
  get pending(): boolean {
    return this.loader.pending;
  }

  /** Stop waiting (the kernel is gone): nothing that arrives later is shown. */
  cancel(): void {
    this.loader.cancel();
  }

  dispose(): void {
    this.loader.dispose();
  }

  /** Ask for the selected head of the current run, unless it is the one asked for last. */
  request(): void {
    const { runId, layer, head } = this.host.traits();
    const key = headKey(runId, layer, head);
    if (key === this.wanted) return;
    this.wanted = key;
    this.headError = "";
    const now = this.loader.load(runId, layer, head);
    if (!now && !this.host.live()) this.loader.cancel(); // nobody will answer
    this.pattern.setLoading(!now && this.host.live());
  }

  /** Draw the head again (the reweighting or the theme changed); false when none is shown. */
  redraw(): boolean {
    if (this.shown === null) return false;
    this.show(this.shown);
    return true;
  }

  /** The displayed head if it belongs to the current run (hover needs matching tokens). */
  current(): HeadPattern | null {
    const p = this.shown;
    const t = this.host.traits();
    return p !== null && p.runId === t.runId && p.seqLen === t.tokens.length ? reweightPattern(p, this.reweight(p)) : null;
  }

  /** Redraw the shown head when the value weighting or its norms changed. */
  followValueWeighting(): void {
    const t = this.host.traits();
    const on = valueWeightedOn(t);
    const key = on ? `on|${t.valueNormsRunId}|${t.valueNormsLayer}|${t.valueNorms.length}` : "off";
    const source = on ? bytesSource(this.model, "value_norms") : null;
    if (key === this.valueWeightKey && source === this.valueWeightSource) return;
    this.valueWeightKey = key;
    this.valueWeightSource = source;
    this.redraw();
  }

  /** What tooltips add: generated tokens, and a note on reweighted weights. */
  tipContext(): PairContext {
    const t = this.host.traits();
    const opts = this.reweight();
    const shown = this.shown;
    const raw = opts.keyFactor !== null && opts.keyFactor !== undefined && shown !== null && shown.runId === t.runId ? shown : null;
    return { generatedFrom: t.generatedFrom, weightNote: reweightNote(opts), raw };
  }

  private show(p: HeadPattern): void {
    this.shown = p;
    this.headError = "";
    const t = this.host.traits();
    if (valueWeightedOn(t) && !normsReady(t, p.runId, p.layer)) {
      this.pattern.setLoading(true); // the kernel sends this layer's value norms next
      this.host.statusChanged();
      return;
    }
    this.pattern.setLoading(false);
    this.pattern.setPattern(reweightPattern(p, this.reweight(p)), lutFor(this.host.theme()), `layer ${p.layer}, head ${p.head}`, p.runId === t.runId ? t.tokens : []);
    this.pattern.setMarks(this.host.state());
    this.host.drawn();
  }

  /** The display's reweighting: "hide BOS" where the run starts with its model's BOS. */
  private reweight(p: HeadPattern | null = this.shown): ReweightOptions {
    const t = this.host.traits();
    const keyFactor = p !== null && valueWeightedOn(t)
      ? this.headNorms.forHead(t, bytesSource(this.model, "value_norms"), p.runId, p.layer, p.head)
      : null;
    return { hideBos: this.host.state().hideBos && t.bosFirst, keyFactor };
  }
}
