/**
 * The side panel bound to one view: it is built with its events wired to the kernel session,
 * and it renders the traits (atlas, known heads, scores, prompt, history, ablation, patching)
 * in the view's palette. The view owns the tokens, the pattern and the status line.
 */
import { ablationOf, patchingOf } from "../model/interventions";
import { scoreLines, scoreOf, scoreTable, type ScoreTable } from "../model/scores";
import type { Traits } from "../model/traits";
import { atlasReady, pendingText, valueWeightedOn, valueWeightedReason } from "../model/value-norms";
import { divergingLutFor, lutFor, type Theme } from "../renderers/lut";
import type { Palette } from "../renderers/palette";
import type { Tooltip } from "../renderers/tooltip";
import type { KernelSession } from "../state/session";
import { SidePanel } from "./panel";
import { NO_SCORE } from "./scores";

export interface BindingHost {
  readonly session: KernelSession;
  readonly tooltip: Tooltip;
  /** The theme's colours for canvases (read once per theme change). */
  readonly palette: Palette;
  traits(): Traits;
  theme(): Theme;
  /** An ablation was asked for: the view colours tokens by loss change. */
  ablating(): void;
  /** The prompt queue or a selection changed what the status line says. */
  statusChanged(): void;
  /** The "hide BOS" display option was switched. */
  hideBos(on: boolean): void;
  /** The "value-weighted" display option was switched. */
  valueWeighted(on: boolean): void;
}

export class PanelBinding {
  readonly side: SidePanel;
  /** The score that colours the atlas ("" for none), and the run whose scores we asked for. */
  private scoreChoice = NO_SCORE;
  private scoresAskedFor = -1;
  private atlasSource: unknown = null;

  constructor(
    private readonly host: BindingHost,
    idPrefix: string,
  ) {
    const { session } = host;
    // read on each use: the tooltip follows the panel when a host docks it elsewhere
    const tooltip = { hide: () => host.tooltip.hide(), show: (...a: Parameters<Tooltip["show"]>) => host.tooltip.show(...a) };
    const select = (ref: { layer: number; head: number }): void => {
      if (!session.select(ref.layer, ref.head)) host.statusChanged();
    };
    this.side = new SidePanel(
      {
        select,
        hover: (ref, x, y) => {
          if (ref === null) tooltip.hide();
          else tooltip.show(this.headLines(ref.layer, ref.head), x, y, this.side.atlas.cellClientBox(ref));
        },
      },
      {
        pick: (name) => {
          this.scoreChoice = name;
          this.renderScores();
          host.statusChanged();
        },
        select,
        probe: () => {
          this.scoreChoice = "induction";
          session.send({ type: "probe" }, host.traits());
          this.renderScores();
          host.statusChanged();
        },
      },
      (prompt) => {
        session.submit(prompt, host.traits());
        this.renderPrompt();
        host.statusChanged();
      },
      {
        ablate: {
          ablate: (request) => {
            host.ablating();
            session.send({ type: "ablate", heads: request.heads, method: request.method, reference: request.reference }, host.traits());
            host.statusChanged();
          },
          clear: () => {
            session.send({ type: "clear_ablation" }, host.traits());
            host.statusChanged();
          },
        },
        patch: {
          patch: (request) => {
            session.send({ type: "patch", ...request }, host.traits());
            host.statusChanged();
          },
          select,
          hover: (ref, value, x, y) => {
            if (ref === null) tooltip.hide();
            else tooltip.show([`layer ${ref.layer}, head ${ref.head}`, `patching effect ${Number.isNaN(value) ? "–" : value.toFixed(3)}`], x, y,
              this.side.patch.heatmap.cellClientBox(ref));
          },
        },
      },
      idPrefix,
      host.palette,
      {
        generate: (count) => {
          session.send({ type: "generate", max_new_tokens: count }, host.traits());
          host.statusChanged();
        },
        hideBos: (on) => host.hideBos(on),
        valueWeighted: (on) => host.valueWeighted(on),
      },
    );
  }

  /** Everything the panel shows; `atlasSource` is the raw `atlas` trait (redrawn when it changes). */
  render(atlasSource: unknown): void {
    this.renderAtlas(atlasSource);
    this.renderScores();
    this.renderPrompt();
    this.side.history.update(this.host.traits().history, this.host.session.canRun(this.host.traits()));
    this.renderInterventions();
  }

  /** The palette changed: redraw every canvas. */
  repaint(atlasSource: unknown): void {
    this.atlasSource = null;
    this.renderAtlas(atlasSource);
    this.renderScores();
    this.renderInterventions();
    this.side.patch.heatmap.repaint();
  }

  renderPrompt(): void {
    const t = this.host.traits();
    const { session } = this.host;
    const busy = session.runs.busy;
    this.side.prompt.update(t.prompt, t.runId, session.promptBlocked(t), t.status === "running" || busy, busy);
  }

  /** The error of this view's last action, next to the control that caused it. */
  renderFailure(): void {
    const failure = this.host.session.failure(this.host.traits());
    this.side.showError(failure?.origin ?? null, failure?.text ?? "");
  }

  dispose(): void {
    this.side.dispose();
  }

  private renderAtlas(source: unknown): void {
    const t = this.host.traits();
    const weighted = valueWeightedOn(t) && atlasReady(t);
    this.side.valueWeighted.update(t.valueWeighted, valueWeightedReason(t), pendingText(t), this.host.session.live);
    this.side.atlas.el.classList.toggle("hs-atlas-busy", valueWeightedOn(t) && !atlasReady(t));
    this.side.atlas.el.setAttribute("aria-busy", String(valueWeightedOn(t) && !atlasReady(t)));
    if (source !== this.atlasSource) {
      this.atlasSource = source;
      this.side.atlas.setData(weighted ? t.atlasValueWeighted : t.atlas, t.nLayers, t.nHeads, t.thumbSize, lutFor(this.host.theme()));
    }
    this.side.atlas.setSelected({ layer: t.layer, head: t.head });
    this.side.known.update(t.knownHeads, { layer: t.layer, head: t.head });
  }

  /** The current run's scores, or null while they are missing or belong to an older run. */
  private scoreTableNow(): ScoreTable | null {
    const t = this.host.traits();
    if (t.scoresRunId !== t.runId) return null;
    return scoreTable(t.scoreNames, t.nLayers, t.nHeads, t.scores);
  }

  /** Tint the atlas and list the best heads by the chosen score, asking the kernel once a run. */
  private renderScores(): void {
    const t = this.host.traits();
    const table = this.scoreTableNow();
    const lut = lutFor(this.host.theme());
    if (this.scoreChoice !== NO_SCORE && table === null && this.scoresAskedFor !== t.runId) {
      this.scoresAskedFor = t.runId;
      this.host.session.send({ type: "request_scores" }, t);
    }
    const values = table === null || this.scoreChoice === NO_SCORE ? null : scoreOf(table, this.scoreChoice);
    this.side.atlas.setTint(values, lut);
    this.side.scores.render(t.scoreNames, table, this.scoreChoice, lut, this.host.session.canRun(t) && t.status !== "running");
  }

  private headLines(layer: number, head: number): string[] {
    const table = this.scoreTableNow();
    const t = this.host.traits();
    const weighted = valueWeightedOn(t) && atlasReady(t) ? ["thumbnail value-weighted"] : [];
    return [`layer ${layer}, head ${head}`, ...weighted, ...(table === null ? [] : scoreLines(table, layer, head))];
  }

  /** The ablation and patching sections. */
  private renderInterventions(): void {
    const t = this.host.traits();
    const canRun = this.host.session.canRun(t);
    const running = t.status === "running";
    const selected = { layer: t.layer, head: t.head };
    this.side.generate.update(canRun, running);
    this.side.ablate.update({
      selected,
      applied: ablationOf(t)?.heads ?? [],
      appliedLabel: t.ablationLabel,
      canRun,
      running,
      staticExport: t.staticExport,
    });
    this.side.patch.update({
      result: patchingOf(t),
      patchId: t.patchId,
      clean: t.patchClean,
      corrupted: t.patchCorrupted,
      prompt: t.prompt,
      summary: t.patchSummary,
      selected,
      canRun,
      running,
      progress: t.patchProgress,
      lut: divergingLutFor(this.host.theme()),
    });
  }
}
