/**
 * One rendered view of a headscope widget: wires traits, the head loader, the view state and
 * the renderers together. Everything here is per view; nothing is shared between widgets.
 */
import type { AnyModel } from "./model/anywidget";
import { focusLevels, strongest, weight, type HeadPattern } from "./model/head";
import type { ModelLink } from "./index";
import { randomToken, type Channel } from "./model/channel";
import { HeadLoader, headKey } from "./model/heads";
import { RunQueue } from "./model/runs";
import { readTraits, TRAIT_NAMES, type Traits } from "./model/traits";
import { button, h } from "./renderers/dom";
import { divergingLutFor, hostTheme, lutFor, themeOf, type Theme } from "./renderers/lut";
import { ablationOf, changeScale, lossLevels, lossLine, noLossLine, patchingOf, type Ablation } from "./model/interventions";
import { AblationEffect } from "./renderers/next-tokens";
import { PatternView } from "./renderers/pattern";
import { TokenView } from "./renderers/tokens";
import { isolatedToken } from "./renderers/text";
import { pairLines, Tooltip } from "./renderers/tooltip";
import { scoreLines, scoreOf, scoreTable, type ScoreTable } from "./model/scores";
import { SidePanel } from "./sidepanel/panel";
import { NO_SCORE } from "./sidepanel/scores";
import { ActionTracker, StatusLine, type ActionOrigin } from "./sidepanel/status";
import { Store } from "./state/store";
import {
  clampToLength,
  clickToken,
  initialViewState,
  leaveToken,
  pointCell,
  pointToken,
  setMode,
  tooltipPair,
  unlock,
  type Mode,
  type ViewState,
} from "./state/view-state";

export class HeadscopeView {
  readonly root: HTMLDivElement;
  private readonly store = new Store<ViewState>(initialViewState);
  private readonly loader: HeadLoader;
  private readonly channel: Channel;
  private readonly runs: RunQueue;
  /** This view's random id: element ids, request ids and the kernel's count of open views. */
  private readonly viewId = randomToken();
  private readonly unlisten: (() => void)[] = [];
  private readonly tooltip: Tooltip;
  private readonly tokens: TokenView;
  private readonly pattern: PatternView;
  private readonly side: SidePanel;
  private readonly status = new StatusLine();
  private readonly header: HTMLElement;
  private readonly modeButtons: Record<Mode, HTMLButtonElement>;
  private readonly lossButton: HTMLButtonElement;
  private readonly effect = new AblationEffect();
  /** Token colours: attention (by the mode) or the ablation's loss change. */
  private tokenColour: "attention" | "loss" = "attention";
  private ablationKey = "";
  private traits: Traits;
  private shown: HeadPattern | null = null;
  private wanted = "";
  private headError = "";
  private atlasSource: unknown = null;
  private syncQueued = false;
  /** The score that colours the atlas ("" for none), and the run whose scores we asked for. */
  private scoreChoice = NO_SCORE;
  private scoresAskedFor = -1;
  /** The palette every canvas and chip is painted in; only {@link repaintForTheme} changes it. */
  private theme: Theme;
  private readonly themeWatch: ThemeWatch;
  private readonly onChange = (): void => this.scheduleSync();
  /** The side-panel action the kernel works on, so that its error shows next to its control. */
  private readonly actions = new ActionTracker();

  constructor(
    private readonly model: AnyModel,
    link: ModelLink,
  ) {
    const id = `headscope-${this.viewId}`;
    this.channel = link.channel;
    this.runs = new RunQueue(this.viewId, (request) => this.channel.send(request));
    this.traits = readTraits(model);
    this.root = h("div", "headscope");
    // not in the page yet, so no computed style: the host's markers are the best guess until
    // the view is attached (the theme watch then checks the stylesheet's answer)
    this.theme = hostTheme(document);
    this.root.id = id;
    // Keys pressed inside the widget are ours. Jupyter's command-mode shortcuts (Notebook 7 runs
    // them in the capture phase) would swallow arrow keys, Escape and Enter; Lumino skips an
    // element marked with this attribute, and its selectors match the focused element itself.
    this.root.setAttribute("data-lm-suppress-shortcuts", "true");
    this.root.addEventListener("focusin", (e) => {
      if (e.target instanceof HTMLElement) e.target.setAttribute("data-lm-suppress-shortcuts", "true");
    });
    this.tooltip = new Tooltip(this.root);
    this.loader = new HeadLoader(link.hub, {
      onHead: (p) => this.showPattern(p),
      onError: (message) => {
        this.headError = message;
        this.renderStatus();
      },
    });
    this.header = h("header", "hs-header");
    this.modeButtons = {
      query: button("hs-mode-query", "Attends to", () => this.colourBy("attention", "query")),
      key: button("hs-mode-key", "Attended by", () => this.colourBy("attention", "key")),
    };
    this.lossButton = button("hs-mode-loss", "Loss change", () => this.colourBy("loss", this.state.mode),
      "Colour tokens by the ablation's loss change (ablated minus clean)");
    this.tokens = new TokenView({
      point: (i, x, y) => this.pointToken(i, x, y),
      leave: () => {
        this.update(leaveToken(this.state));
        this.tooltip.hide();
      },
      click: (i) => this.update(clickToken(this.state, i)),
    });
    this.pattern = new PatternView({
      point: (cell, x, y) => this.pointCell(cell, x, y),
      click: (cell) => this.update(clickToken(this.state, this.state.mode === "query" ? cell.query : cell.key)),
    });
    this.side = new SidePanel(
      {
        select: (ref) => this.select(ref.layer, ref.head),
        hover: (ref, x, y) => {
          if (ref === null) this.tooltip.hide();
          else this.tooltip.show(this.headLines(ref.layer, ref.head), x, y, this.side.atlas.cellClientBox(ref));
        },
      },
      {
        pick: (name) => {
          this.scoreChoice = name;
          this.renderScores();
        },
        select: (ref) => this.select(ref.layer, ref.head),
        probe: () => {
          this.scoreChoice = "induction";
          this.sendAction({ type: "probe" });
          this.renderScores();
        },
      },
      (prompt) => {
        this.actionSent("run");
        this.runs.submit(prompt);
        this.renderPromptAndStatus();
      },
      {
        ablate: {
          ablate: (request) => {
            this.tokenColour = "loss";
            this.sendAction({ type: "ablate", heads: request.heads, method: request.method, reference: request.reference });
          },
          clear: () => this.sendAction({ type: "clear_ablation" }),
        },
        patch: {
          patch: (request) => this.sendAction({ type: "patch", ...request }),
          select: (ref) => this.select(ref.layer, ref.head),
          hover: (ref, value, x, y) => {
            if (ref === null) this.tooltip.hide();
            else this.tooltip.show([`layer ${ref.layer}, head ${ref.head}`, `patching effect ${Number.isNaN(value) ? "–" : value.toFixed(3)}`], x, y,
              this.side.patch.heatmap.cellClientBox(ref));
          },
        },
      },
      id,
    );
    this.layout();
    this.store.subscribe((s, prev) => this.renderState(s, prev));
    this.root.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.state.locked) {
        this.update(unlock(this.state));
        e.stopPropagation();
      }
    });
    for (const name of TRAIT_NAMES) model.on(`change:${name}`, this.onChange);
    this.unlisten.push(
      this.channel.onCustom((content) => {
        if (this.runs.receive(content)) this.renderPromptAndStatus();
      }),
      this.channel.onConnection(() => this.disconnected()),
    );
    this.themeWatch = watchTheme(this.root, () => this.repaintForTheme());
    this.channel.send({ type: "view", view: this.viewId, open: true });
    this.sync();
  }

  dispose(): void {
    this.channel.send({ type: "view", view: this.viewId, open: false });
    for (const stop of this.unlisten) stop();
    this.themeWatch.stop();
    for (const name of TRAIT_NAMES) this.model.off(`change:${name}`, this.onChange);
    this.loader.dispose();
    this.pattern.dispose();
    this.side.dispose();
    this.root.remove();
  }

  /** True while the widget has a model and its kernel answers: the panel's actions work. */
  private canRun(): boolean {
    return this.traits.canRun && this.channel.live;
  }

  private promptBlocked(): string {
    if (!this.traits.canRun) {
      return "Precomputed attention: there is no model to re-run. Use headscope.show(model, prompt) for a live widget.";
    }
    return this.channel.live ? "" : "The kernel is gone: run the cell again to get a live widget.";
  }

  /** Select a head from the browser (atlas, known heads, top heads, patching heatmap). */
  private select(layer: number, head: number): void {
    if (!this.channel.save({ layer, head })) this.renderStatus();
  }

  /** The kernel is gone: say so, stop waiting for it, keep what is shown and the typed text. */
  private disconnected(): void {
    this.loader.cancel();
    const left = this.runs.reset();
    const box = this.side.prompt.textarea;
    if (left !== null && box.value.trim() === "") box.value = left;
    this.root.dataset.connection = "closed";
    this.sync();
  }

  private renderPromptAndStatus(): void {
    const t = this.traits;
    this.side.prompt.update(t.prompt, t.runId, this.promptBlocked(), t.status === "running" || this.runs.busy, this.runs.busy);
    this.renderStatus();
  }

  private get state(): ViewState {
    return this.store.get();
  }

  private update(next: ViewState): void {
    this.store.set(next);
  }

  private layout(): void {
    const modes = h("div", "hs-mode");
    modes.setAttribute("role", "group");
    modes.setAttribute("aria-label", "Colour tokens by");
    modes.append(this.modeButtons.query, this.modeButtons.key, this.lossButton);
    const tokenBar = h("div", "hs-bar");
    tokenBar.append(h("div", "hs-section-title", "Tokens"), modes);
    const main = h("div", "hs-main");
    main.append(tokenBar, this.tokens.el, this.effect.el, this.pattern.el);
    const body = h("div", "hs-body");
    body.append(main, this.side.el);
    this.root.append(this.header, body, this.status.el, this.tooltip.el);
    this.renderModes();
  }

  // --- traits → view -------------------------------------------------------------------

  private scheduleSync(): void {
    if (this.syncQueued) return;
    this.syncQueued = true;
    queueMicrotask(() => {
      this.syncQueued = false;
      this.sync();
    });
  }

  private sync(): void {
    const t = readTraits(this.model);
    this.traits = t;
    this.tokens.setTokens(t.tokens);
    this.update(clampToLength(this.state, t.tokens.length));
    this.renderHeader();
    this.renderAtlas();
    this.renderScores();
    this.side.prompt.update(t.prompt, t.runId, this.promptBlocked(), t.status === "running" || this.runs.busy, this.runs.busy);
    this.side.history.update(t.history, this.canRun());
    // a new ablation (from the panel or from Python) colours the tokens by its loss change
    const a = this.ablation();
    const key = a === null ? "" : `${a.heads.join(";")}|${a.label}`;
    if (key !== this.ablationKey) {
      this.ablationKey = key;
      if (key !== "") this.tokenColour = "loss";
    }
    this.renderInterventions();
    this.renderModes();
    this.requestHead();
    this.paintTokens();
    this.renderStatus();
  }

  private renderHeader(): void {
    const t = this.traits;
    const parts = [
      ["hs-model", t.modelName || "precomputed attention"],
      ["hs-head-label", `layer ${t.layer} · head ${t.head}`],
      ["hs-seq", `${t.tokens.length} tokens`],
      ["hs-geometry", `${t.nLayers}×${t.nHeads} heads`],
    ];
    this.header.replaceChildren(
      h("span", "hs-title", "headscope"),
      ...parts.map(([cls, text]) => h("span", `hs-chip ${cls}`, text)),
    );
  }

  /** The host switched light/dark (JupyterLab theme, VS Code, OS): recolour the canvases. */
  private repaintForTheme(): void {
    const theme = themeOf(this.root);
    if (theme === null || theme === this.theme) return;
    this.theme = theme;
    this.atlasSource = null;
    this.renderAtlas();
    this.renderScores();
    this.renderInterventions();
    this.paintTokens();
    if (this.shown !== null) this.showPattern(this.shown);
  }

  private ablation(): Ablation | null {
    return ablationOf(this.traits);
  }

  private colourBy(colour: "attention" | "loss", mode: Mode): void {
    this.tokenColour = colour;
    this.update(setMode(this.state, mode));
    this.renderModes();
    this.paintTokens();
  }

  /** The ablation and patching sections of the side panel. */
  private renderInterventions(): void {
    const t = this.traits;
    const running = t.status === "running";
    this.side.ablate.update({
      selected: { layer: t.layer, head: t.head },
      applied: this.ablation()?.heads ?? [],
      appliedLabel: t.ablationLabel,
      canRun: this.canRun(),
      running,
    });
    this.side.patch.update({
      result: patchingOf(t),
      patchId: t.patchId,
      clean: t.patchClean,
      corrupted: t.patchCorrupted,
      prompt: t.prompt,
      summary: t.patchSummary,
      selected: { layer: t.layer, head: t.head },
      canRun: this.canRun(),
      running,
      progress: t.patchProgress,
      lut: divergingLutFor(this.theme),
    });
  }

  /** The current run's scores, or null while they are missing or belong to an older run. */
  private scoreTableNow(): ScoreTable | null {
    const t = this.traits;
    if (t.scoresRunId !== t.runId) return null;
    return scoreTable(t.scoreNames, t.nLayers, t.nHeads, t.scores);
  }

  /** Tint the atlas and list the best heads by the chosen score, asking the kernel once a run. */
  private renderScores(): void {
    const t = this.traits;
    const table = this.scoreTableNow();
    const lut = lutFor(this.theme);
    if (this.scoreChoice !== NO_SCORE && table === null && this.scoresAskedFor !== t.runId) {
      this.scoresAskedFor = t.runId;
      this.sendAction({ type: "request_scores" });
    }
    const values = table === null || this.scoreChoice === NO_SCORE ? null : scoreOf(table, this.scoreChoice);
    this.side.atlas.setTint(values, lut);
    this.side.scores.render(t.scoreNames, table, this.scoreChoice, lut, this.canRun() && t.status !== "running");
  }

  private headLines(layer: number, head: number): string[] {
    const table = this.scoreTableNow();
    return [`layer ${layer}, head ${head}`, ...(table === null ? [] : scoreLines(table, layer, head))];
  }

  private renderAtlas(): void {
    const t = this.traits;
    const source = this.model.get("atlas") as unknown;
    if (source !== this.atlasSource) {
      this.atlasSource = source;
      this.side.atlas.setData(t.atlas, t.nLayers, t.nHeads, t.thumbSize, lutFor(this.theme));
    }
    this.side.atlas.setSelected({ layer: t.layer, head: t.head });
    this.side.known.update(t.knownHeads, { layer: t.layer, head: t.head });
  }

  private requestHead(): void {
    const { runId, layer, head } = this.traits;
    const key = headKey(runId, layer, head);
    if (key === this.wanted) return;
    this.wanted = key;
    this.headError = "";
    const now = this.loader.load(runId, layer, head);
    if (!now && !this.channel.live) this.loader.cancel(); // nobody will answer
    this.pattern.setLoading(!now && this.channel.live);
  }

  private showPattern(p: HeadPattern): void {
    this.shown = p;
    this.headError = "";
    this.pattern.setLoading(false);
    this.pattern.setPattern(p, lutFor(this.theme), `layer ${p.layer}, head ${p.head}`, p.runId === this.traits.runId ? this.traits.tokens : []);
    this.pattern.setMarks(this.state);
    this.paintTokens();
    this.renderStatus();
  }

  /** Send a side-panel action to the kernel, remembering where it came from. */
  private sendAction(message: { type: keyof typeof ACTION_ORIGINS } & Record<string, unknown>): void {
    this.actionSent(ACTION_ORIGINS[message.type]);
    this.channel.send(message);
    this.renderStatus();
  }

  /** An action of `origin` goes to the kernel: a failure now is shown next to its control. */
  private actionSent(origin: ActionOrigin): void {
    this.actions.sent(origin, this.traits, this.resultMark());
  }

  /** What changes when an action succeeds: run, ablation, patching and score ids. */
  private resultMark(): string {
    const t = this.traits;
    return `${t.runId}|${t.ablationRunId}|${t.ablationHeads.join(";")}|${t.patchId}|${t.scoresRunId}`;
  }

  private renderStatus(): void {
    const t = this.traits;
    const failure = this.actions.observe(t, this.resultMark());
    this.side.showError(failure?.origin ?? null, failure?.text ?? "");
    this.status.update({
      status: t.status,
      error: t.error,
      headError: this.headError,
      loading: this.loader.pending,
      note: t.note,
      patchProgress: t.patchProgress,
      disconnected: !this.channel.live,
      queued: this.runs.waiting,
    });
    this.root.classList.toggle("hs-has-error", t.status === "error");
  }

  // --- view state → view ---------------------------------------------------------------

  /** The displayed head if it belongs to the current run (hover needs matching tokens). */
  private current(): HeadPattern | null {
    const p = this.shown;
    return p !== null && p.runId === this.traits.runId && p.seqLen === this.traits.tokens.length ? p : null;
  }

  private renderState(s: ViewState, prev: ViewState): void {
    if (s.mode !== prev.mode) this.renderModes();
    if (s.focus !== prev.focus || s.mode !== prev.mode || s.locked !== prev.locked) this.paintTokens();
    this.pattern.setMarks(s);
  }

  private renderModes(): void {
    const loss = this.tokenColour === "loss" && this.ablation() !== null;
    for (const mode of ["query", "key"] as const) {
      this.modeButtons[mode].setAttribute("aria-pressed", String(!loss && this.state.mode === mode));
    }
    this.lossButton.setAttribute("aria-pressed", String(loss));
    this.lossButton.disabled = this.ablation() === null;
    this.root.dataset.mode = loss ? "loss" : this.state.mode;
  }

  private paintTokens(): void {
    const { focus, mode, locked } = this.state;
    const a = this.ablation();
    const loss = this.tokenColour === "loss" && a !== null;
    const diverging = divergingLutFor(this.theme);
    if (loss) {
      this.tokens.paint(lossLevels(a), focus, locked, diverging);
    } else {
      const p = this.current();
      const levels = p !== null && focus !== null ? focusLevels(p, mode, focus) : null;
      this.tokens.paint(levels, focus, locked, lutFor(this.theme));
    }
    const position = focus ?? this.state.hoverToken;
    this.effect.update(a, this.traits.tokens, position, diverging, a === null ? 1 : changeScale(a), loss);
  }

  private pointToken(index: number, x: number, y: number): void {
    this.update(pointToken(this.state, index));
    const a = this.ablation();
    const token = this.traits.tokens[index] ?? "";
    const chip = this.tokens.chipAt(index);
    const line = a === null ? null : lossLine(a, index, token);
    if (this.tokenColour === "loss" && a !== null) {
      this.tooltip.show([line ?? noLossLine(index, token)], x, y, chip);
      return;
    }
    const p = this.current();
    const pair = p === null ? null : tooltipPair(this.state, (mode, i) => strongest(p, mode, i));
    if (p === null || pair === null) {
      this.tooltip.show([`token ${index} ${isolatedToken(token)}`], x, y, chip);
      return;
    }
    const [pairLine, weightLine] = pairLines(this.traits.tokens, pair.query, pair.key, weight(p, pair.query, pair.key));
    const anchored = this.state.focus !== null && this.state.focus !== index;
    const hint = anchored ? "" : this.state.mode === "query" ? " (strongest key)" : " (strongest query)";
    // the ablation's loss line for this token is in the effect panel under the tokens already
    this.tooltip.show([pairLine, weightLine + hint], x, y, chip);
  }

  private pointCell(cell: { query: number; key: number } | null, x: number, y: number): void {
    this.update(pointCell(this.state, cell));
    const p = this.current();
    if (cell === null || p === null) {
      this.tooltip.hide();
      return;
    }
    const lines = pairLines(this.traits.tokens, cell.query, cell.key, weight(p, cell.query, cell.key));
    this.tooltip.show(lines, x, y, this.pattern.cellClientBox(cell, x, y));
  }
}

/** The side-panel section each kernel message comes from (runs go through the prompt queue). */
const ACTION_ORIGINS = {
  probe: "probe",
  request_scores: "scores",
  ablate: "ablate",
  clear_ablation: "ablate",
  patch: "patch",
} as const satisfies Record<string, ActionOrigin>;

interface ThemeWatch {
  stop(): void;
}

/**
 * Calls `changed` when the page may have switched between light and dark: JupyterLab flips
 * `data-jp-theme-light` on <body>, VS Code swaps body classes, other hosts follow the OS. Also
 * when `root` gets a box: it is attached (first render, a reload, a notebook that windows its
 * cells out and back) or shown again, and only then can its computed style be read.
 */
function watchTheme(root: HTMLElement, changed: () => void): ThemeWatch {
  const resize = new ResizeObserver(changed);
  resize.observe(root);
  const observer = new MutationObserver(changed);
  observer.observe(document.body, { attributes: true, attributeFilter: ["class", "data-jp-theme-light", "data-jp-theme-name"] });
  const media = window.matchMedia("(prefers-color-scheme: dark)");
  media.addEventListener("change", changed);
  return {
    stop: () => {
      resize.disconnect();
      observer.disconnect();
      media.removeEventListener("change", changed);
    },
  };
}
