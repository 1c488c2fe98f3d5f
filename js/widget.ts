/**
 * One rendered view of a headscope widget: wires traits, the head loader, the view state and
 * the renderers together. Everything here is per view; nothing is shared between widgets.
 */
import type { ModelLink } from "./index";
import type { AnyModel } from "./model/anywidget";
import { focusLevels, weight, type HeadPattern } from "./model/head";
import { HeadLoader, headKey } from "./model/heads";
import { ablationOf, changeScale, lossLevels, type Ablation } from "./model/interventions";
import { readTraits, TRAIT_NAMES, type Traits } from "./model/traits";
import { bytesSource } from "./model/transport";
import { atlasReady, HeadNorms, normsReady, valueWeightedOn } from "./model/value-norms";
import { button, h } from "./renderers/dom";
import { divergingLutFor, hostTheme, lutFor, themeOf, type Theme } from "./renderers/lut";
import { AblationEffect } from "./renderers/next-tokens";
import { Palette } from "./renderers/palette";
import { PatternView } from "./renderers/pattern";
import { watchTheme, type ThemeWatch } from "./renderers/theme-watch";
import { TokenView } from "./renderers/tokens";
import { pairLines, Tooltip, type PairContext } from "./renderers/tooltip";
import { actionForKey, notify, registry, type ViewAction, type ViewSummary } from "./registry";
import { PanelBinding } from "./sidepanel/binding";
import { Dock, markUsed } from "./sidepanel/dock";
import { OVPanel } from "./sidepanel/ov";
import { StatusLine } from "./sidepanel/status";
import { runAction } from "./state/actions";
import { markGenerated } from "./state/generated";
import { tokenTooltip } from "./state/hover";
import { KernelSession } from "./state/session";
import { reweightNote, reweightPattern, type ReweightOptions } from "./state/reweight";
import { Store } from "./state/store";
import {
  clampToLength,
  clickToken,
  initialViewState,
  leaveToken,
  pointCell,
  pointToken,
  setHideBos,
  setMode,
  unlock,
  type Mode,
  type ViewState,
} from "./state/view-state";

export class HeadscopeView {
  readonly root: HTMLDivElement;
  private readonly store = new Store<ViewState>(initialViewState);
  private readonly loader: HeadLoader;
  private readonly session: KernelSession;
  private readonly tooltip: Tooltip;
  private readonly tokens: TokenView;
  private readonly pattern: PatternView;
  private readonly panel: PanelBinding;
  /** The selected head's OV lists and logit attribution (sidepanel/ov), at the panel's end. */
  private readonly ov: OVPanel;
  private readonly status = new StatusLine();
  private readonly header: HTMLElement;
  private readonly modeButtons: Record<Mode, HTMLButtonElement>;
  private readonly lossButton: HTMLButtonElement;
  private readonly effect = new AblationEffect();
  private readonly body: HTMLElement;
  /** Where a host shows the side panel (the view's own body, as always without a host). */
  private readonly dock: Dock;
  /** Token colours: attention (by the mode) or the ablation's loss change. */
  private tokenColour: "attention" | "loss" = "attention";
  private ablationKey = "";
  private traits: Traits;
  private shown: HeadPattern | null = null;
  private wanted = "";
  private headError = "";
  private syncQueued = false;
  /** The palette every canvas and chip is painted in; only {@link repaintForTheme} changes it. */
  private theme: Theme;
  /** The stylesheet's colours for canvases, read once per theme change. */
  private readonly palette = new Palette();
  private readonly themeWatch: ThemeWatch;
  private readonly onChange = (): void => this.scheduleSync();
  /** Value-weighting: the shown head's norms by head, and what the pattern was last drawn with. */
  private readonly headNorms = new HeadNorms();
  private valueWeightKey = "";
  private valueWeightSource: unknown = null;
  /** The summary a host last saw (a host is told when it changes). */
  private summaryKey = "";

  constructor(
    private readonly model: AnyModel,
    link: ModelLink,
  ) {
    this.session = new KernelSession(link.channel, {
      runsChanged: () => {
        this.panel.renderPrompt();
        this.renderStatus();
      },
      disconnected: (waiting) => this.disconnected(waiting),
    });
    const id = `headscope-${this.session.viewId}`;
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
    }, this.palette);
    this.body = h("div", "hs-body");
    const view = this;
    this.panel = new PanelBinding(
      {
        session: this.session,
        get tooltip() {
          return view.dock.tooltip ?? view.tooltip;
        },
        traits: () => this.traits,
        theme: () => this.theme,
        palette: this.palette,
        ablating: () => {
          this.tokenColour = "loss";
        },
        statusChanged: () => this.renderStatus(),
        hideBos: (on) => this.update(setHideBos(this.state, on)),
        valueWeighted: (on) => {
          this.model.set("value_weighted", on);
          this.model.save_changes();
        },
      },
      id,
    );
    this.ov = new OVPanel(link.channel, id);
    this.panel.side.el.append(this.ov.el);
    this.dock = new Dock({ root: this.root, body: this.body, side: this.panel.side.el, status: this.status.el });
    this.layout();
    this.store.subscribe((s, prev) => this.renderState(s, prev));
    this.root.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.state.locked) {
        this.update(unlock(this.state));
        e.stopPropagation();
      }
      const action = e.altKey && !e.ctrlKey && !e.metaKey ? actionForKey(e.code, e.shiftKey) : null;
      if (action !== null && this.act(action)) {
        e.preventDefault();
        e.stopPropagation();
      }
    });
    this.root.addEventListener("focusin", () => markUsed(this.root.id));
    this.root.addEventListener("pointerdown", () => markUsed(this.root.id));
    for (const name of TRAIT_NAMES) model.on(`change:${name}`, this.onChange);
    model.on("change:ov_unavailable", this.onChange);
    this.themeWatch = watchTheme(this.root, () => this.repaintForTheme());
    this.sync();
  }

  dispose(): void {
    this.dock.dispose();
    this.session.dispose();
    this.themeWatch.stop();
    for (const name of TRAIT_NAMES) this.model.off(`change:${name}`, this.onChange);
    this.model.off("change:ov_unavailable", this.onChange);
    this.ov.dispose();
    this.loader.dispose();
    this.pattern.dispose();
    this.panel.dispose();
    this.root.remove();
  }

  /** The kernel is gone: say so, stop waiting for it, keep what is shown and the typed text. */
  private disconnected(waiting: string | null): void {
    this.loader.cancel();
    const box = this.panel.side.prompt.textarea;
    if (waiting !== null && box.value.trim() === "") box.value = waiting;
    this.root.dataset.connection = "closed";
    this.sync();
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
    this.body.append(main, this.panel.side.el);
    this.root.append(this.header, this.body, this.status.el, this.tooltip.el);
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
    markGenerated((i) => this.tokens.chipAt(i), t.tokens.length, t.generatedFrom);
    this.panel.side.display.update(this.state.hideBos, t.bosFirst);
    this.update(clampToLength(this.state, t.tokens.length));
    this.renderHeader();
    // a new ablation (from the panel or from Python) colours the tokens by its loss change
    const a = this.ablation();
    const key = a === null ? "" : `${a.heads.join(";")}|${a.label}`;
    if (key !== this.ablationKey) {
      this.ablationKey = key;
      if (key !== "") this.tokenColour = "loss";
    }
    this.panel.render(this.atlasSource());
    this.followValueWeighting();
    this.renderModes();
    this.requestHead();
    this.paintTokens();
    this.renderStatus();
    this.renderOV();
    const summary = JSON.stringify(this.summary());
    if (summary !== this.summaryKey) {
      this.summaryKey = summary;
      const r = registry();
      if (r.views.has(this.root.id)) notify(r);
    }
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
      this.dock.button,
    );
    this.dock.renderButton();
  }

  // --- the side panel shown by a host (the JupyterLab side bar) -------------------------

  /** What a host lists for this view. */
  summary(): ViewSummary {
    const t = this.traits;
    return { modelName: t.modelName || "precomputed attention", prompt: t.prompt, tokens: t.tokens.length, layer: t.layer, head: t.head };
  }

  /** Show the side panel and the status line in `host` (see sidepanel/dock). */
  mountSidePanel(host: HTMLElement): () => void {
    return this.dock.mount(host);
  }

  /** A host's command; false when it cannot be done. */
  act(action: ViewAction): boolean {
    const { layer, head, nLayers, nHeads } = this.traits;
    const box = this.panel.side.prompt.textarea;
    return runAction(action, {
      layer,
      head,
      nLayers,
      nHeads,
      select: (l, h) => this.session.select(l, h),
      toggleMode: () => this.colourBy("attention", this.state.mode === "query" ? "key" : "query"),
      focusPrompt: () => {
        box.focus();
        return document.activeElement === box;
      },
    });
  }

  /** The host switched light/dark (JupyterLab theme, VS Code, OS): recolour the canvases. */
  private repaintForTheme(): void {
    // detached (a notebook windowing its cells out): the page's markers, as at creation; the
    // stylesheet's answer is checked again once the view is back
    const theme = themeOf(this.root) ?? hostTheme(document);
    const coloured = this.palette.read(this.root);
    if (theme === this.theme && !coloured) return;
    const relut = theme !== this.theme;
    this.theme = theme;
    this.panel.repaint(this.atlasSource());
    this.paintTokens();
    if (relut && this.shown !== null) this.showPattern(this.shown);
    else this.pattern.repaint();
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

  private requestHead(): void {
    const { runId, layer, head } = this.traits;
    const key = headKey(runId, layer, head);
    if (key === this.wanted) return;
    this.wanted = key;
    this.headError = "";
    const now = this.loader.load(runId, layer, head);
    if (!now && !this.session.live) this.loader.cancel(); // nobody will answer
    this.pattern.setLoading(!now && this.session.live);
  }

  private showPattern(p: HeadPattern): void {
    this.shown = p;
    this.headError = "";
    if (valueWeightedOn(this.traits) && !normsReady(this.traits, p.runId, p.layer)) {
      this.pattern.setLoading(true); // the kernel sends this layer's value norms next
      this.renderStatus();
      return;
    }
    this.pattern.setLoading(false);
    this.pattern.setPattern(reweightPattern(p, this.reweight(p)), lutFor(this.theme), `layer ${p.layer}, head ${p.head}`, p.runId === this.traits.runId ? this.traits.tokens : []);
    this.pattern.setMarks(this.state);
    this.paintTokens();
    this.renderStatus();
  }

  private renderStatus(): void {
    const t = this.traits;
    this.panel.renderFailure();
    this.status.update({
      status: t.status,
      error: t.error,
      headError: this.headError,
      loading: this.loader.pending,
      note: t.note,
      patchProgress: t.patchProgress,
      disconnected: !this.session.live,
      queued: this.session.runs.waiting,
      textTransport: t.textTransport,
    });
    this.root.classList.toggle("hs-has-error", t.status === "error");
  }

  // --- view state → view ---------------------------------------------------------------

  /** The displayed head if it belongs to the current run (hover needs matching tokens). */
  private current(): HeadPattern | null {
    const p = this.shown;
    return p !== null && p.runId === this.traits.runId && p.seqLen === this.traits.tokens.length ? reweightPattern(p, this.reweight(p)) : null;
  }

  /** The display's reweighting: "hide BOS" where the run starts with its model's BOS. */
  private reweight(p: HeadPattern | null = this.shown): ReweightOptions {
    const t = this.traits;
    const keyFactor = p !== null && valueWeightedOn(t)
      ? this.headNorms.forHead(t, bytesSource(this.model, "value_norms"), p.runId, p.layer, p.head)
      : null;
    return { hideBos: this.state.hideBos && t.bosFirst, keyFactor };
  }

  /** The atlas trait the panel draws: the value-weighted one once it has arrived. */
  private atlasSource(): unknown {
    const t = this.traits;
    return bytesSource(this.model, valueWeightedOn(t) && atlasReady(t) ? "atlas_value_weighted" : "atlas");
  }

  /** Redraw the shown head when the value weighting or its norms changed. */
  private followValueWeighting(): void {
    const t = this.traits;
    const on = valueWeightedOn(t);
    const key = on ? `on|${t.valueNormsRunId}|${t.valueNormsLayer}|${t.valueNorms.length}` : "off";
    const source = on ? bytesSource(this.model, "value_norms") : null;
    if (key === this.valueWeightKey && source === this.valueWeightSource) return;
    this.valueWeightKey = key;
    this.valueWeightSource = source;
    if (this.shown !== null) this.showPattern(this.shown);
  }

  /** What tooltips add: generated tokens, and a note on reweighted weights. */
  private tipContext(): PairContext {
    const opts = this.reweight();
    const shown = this.shown;
    const raw = opts.keyFactor !== null && opts.keyFactor !== undefined && shown !== null && shown.runId === this.traits.runId ? shown : null;
    return { generatedFrom: this.traits.generatedFrom, weightNote: reweightNote(opts), raw };
  }

  private renderState(s: ViewState, prev: ViewState): void {
    if (s.hideBos !== prev.hideBos) {
      this.panel.side.display.update(s.hideBos, this.traits.bosFirst);
      if (this.shown !== null) this.showPattern(this.shown);
    }
    if (s.mode !== prev.mode) this.renderModes();
    if (s.focus !== prev.focus || s.mode !== prev.mode || s.locked !== prev.locked) this.paintTokens();
    this.pattern.setMarks(s);
    if (s.locked !== prev.locked || s.focus !== prev.focus) this.renderOV();
  }

  /** The OV panel follows the head, the run and the locked token (never a hover alone). */
  private renderOV(): void {
    const t = this.traits;
    const reason = this.model.get("ov_unavailable");
    const unavailable = typeof reason === "string" ? reason : "";
    const { locked, focus } = this.state;
    this.ov.update({
      runId: t.runId, layer: t.layer, head: t.head, tokens: t.tokens,
      position: locked ? focus : null, canRun: this.session.canRun(t), unavailable,
    });
    this.ov.renderPickerNote(this.panel.side.scores.el, unavailable);
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

  // Hover: the tooltip first (it measures the page while nothing is written yet), then the
  // state, whose renderers only write (chips, overlay): no layout is forced in between.

  private pointToken(index: number, x: number, y: number): void {
    const next = pointToken(this.state, index);
    const lines = tokenTooltip(this.traits.tokens, next, index, this.current(), this.ablation(), this.tokenColour === "loss", this.tipContext());
    this.tooltip.show(lines, x, y, this.tokens.chipAt(index));
    this.update(next);
  }

  private pointCell(cell: { query: number; key: number } | null, x: number, y: number): void {
    const p = this.current();
    if (cell === null || p === null) this.tooltip.hide();
    else {
      const lines = pairLines(this.traits.tokens, cell.query, cell.key, weight(p, cell.query, cell.key), this.tipContext());
      this.tooltip.show(lines, x, y, this.pattern.cellClientBox(cell, x, y));
    }
    this.update(pointCell(this.state, cell));
  }
}
