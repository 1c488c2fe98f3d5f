/**
 * One rendered view of a headscope widget: wires traits, the kernel session and the view state
 * to its parts: the frame (renderers/frame), the main column (state/main-pane), the side panel and
 * the status line. Everything here is per view; nothing is shared between widgets.
 */
import type { ModelLink } from "./index";
import type { AnyModel } from "./model/anywidget";
import { ablationOf } from "./model/interventions";
import { readTraits, TRAIT_NAMES, type Traits } from "./model/traits";
import { bytesSource } from "./model/transport";
import { atlasReady, valueWeightedOn } from "./model/value-norms";
import { Frame, type TokenColour } from "./renderers/frame";
import { hostTheme, themeOf, type Theme } from "./renderers/lut";
import { Palette } from "./renderers/palette";
import { watchTheme, type ThemeWatch } from "./renderers/theme-watch";
import { Tooltip } from "./renderers/tooltip";
import type { ViewAction, ViewSummary } from "./registry";
import { PanelBinding } from "./sidepanel/binding";
import { Dock } from "./sidepanel/dock";
import { OVPanel } from "./sidepanel/ov";
import { StatusLine } from "./sidepanel/status";
import { markGenerated } from "./state/generated";
import { HostLink } from "./state/host-link";
import { MainPane } from "./state/main-pane";
import { KernelSession } from "./state/session";
import { Store } from "./state/store";
import { clampToLength, initialViewState, setHideBos, setMode, unlock, type Mode, type ViewState } from "./state/view-state";

export class HeadscopeView {
  readonly root: HTMLDivElement;
  private readonly store = new Store<ViewState>(initialViewState);
  private readonly session: KernelSession;
  private readonly frame: Frame;
  private readonly tooltip: Tooltip;
  /** Tokens, the ablation's effect and the pattern, over the shown head and the token colours. */
  private readonly main: MainPane;
  private readonly panel: PanelBinding;
  /** The selected head's OV lists and logit attribution (sidepanel/ov), at the panel's end. */
  private readonly ov: OVPanel;
  private readonly status = new StatusLine();
  /** Where a host shows the side panel (the view's own body, as always without a host). */
  private readonly dock: Dock;
  private traits: Traits;
  private syncQueued = false;
  /** The palette every canvas and chip is painted in; only {@link repaintForTheme} changes it. */
  private theme: Theme;
  /** The stylesheet's colours for canvases, read once per theme change. */
  private readonly palette = new Palette();
  private readonly themeWatch: ThemeWatch;
  private readonly onChange = (): void => this.scheduleSync();
  /** What a host sees of this view: summary, commands, last use. */
  private readonly host: HostLink;

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
    this.frame = new Frame(id, (colour, mode) => this.colourBy(colour, mode ?? this.state.mode));
    this.root = this.frame.root;
    // not in the page yet, so no computed style: the host's markers are the best guess until
    // the view is attached (the theme watch then checks the stylesheet's answer)
    this.theme = hostTheme(document);
    this.tooltip = new Tooltip(this.root);
    this.main = new MainPane(model, link.hub, this.store, this.tooltip, this.palette, {
      traits: () => this.traits,
      theme: () => this.theme,
      live: () => this.session.live,
      statusChanged: () => this.renderStatus(),
    });
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
        ablating: () => this.main.colours.set("loss"),
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
    this.dock = new Dock({ root: this.root, body: this.frame.body, side: this.panel.side.el, status: this.status.el });
    this.frame.layout({
      tokens: this.main.tokens.el,
      effect: this.main.effect.el,
      pattern: this.main.pattern.el,
      side: this.panel.side.el,
      status: this.status.el,
      tooltip: this.tooltip.el,
    });
    this.renderModes();
    this.store.subscribe((s, prev) => this.renderState(s, prev));
    this.root.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.state.locked) {
        this.update(unlock(this.state));
        e.stopPropagation();
      }
    });
    this.host = new HostLink({
      root: this.root,
      session: this.session,
      traits: () => this.traits,
      promptBox: () => this.panel.side.prompt.textarea,
      toggleMode: () => this.colourBy("attention", this.state.mode === "query" ? "key" : "query"),
    });
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
    this.main.dispose();
    this.panel.dispose();
    this.root.remove();
  }

  /** The kernel is gone: say so, stop waiting for it, keep what is shown and the typed text. */
  private disconnected(waiting: string | null): void {
    this.main.head.cancel();
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
    this.main.tokens.setTokens(t.tokens);
    markGenerated((i) => this.main.tokens.chipAt(i), t.tokens.length, t.generatedFrom);
    this.panel.side.display.update(this.state.hideBos, t.bosFirst);
    this.update(clampToLength(this.state, t.tokens.length));
    this.frame.renderHeader(t, this.dock.button);
    this.dock.renderButton();
    this.main.colours.follow(t);
    this.panel.render(this.atlasSource());
    this.main.head.followValueWeighting();
    this.renderModes();
    this.main.head.request();
    this.main.paintTokens();
    this.renderStatus();
    this.renderOV();
    this.host.announce();
  }

  // --- the side panel shown by a host (the JupyterLab side bar) -------------------------

  /** What a host lists for this view. */
  summary(): ViewSummary {
    return this.host.summary();
  }

  /** Show the side panel and the status line in `host` (see sidepanel/dock). */
  mountSidePanel(host: HTMLElement): () => void {
    return this.dock.mount(host);
  }

  /** A host's command; false when it cannot be done. */
  act(action: ViewAction): boolean {
    return this.host.act(action);
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
    this.main.paintTokens();
    const redrawn = relut && this.main.head.redraw();
    if (!redrawn) this.main.pattern.repaint();
  }

  /** The atlas trait the panel draws: the value-weighted one once it has arrived. */
  private atlasSource(): unknown {
    const t = this.traits;
    return bytesSource(this.model, valueWeightedOn(t) && atlasReady(t) ? "atlas_value_weighted" : "atlas");
  }

  private colourBy(colour: TokenColour, mode: Mode): void {
    this.main.colours.set(colour);
    this.update(setMode(this.state, mode));
    this.renderModes();
    this.main.paintTokens();
  }

  private renderStatus(): void {
    const t = this.traits;
    this.panel.renderFailure();
    this.status.update({
      status: t.status,
      error: t.error,
      headError: this.main.head.error,
      loading: this.main.head.pending,
      note: t.note,
      patchProgress: t.patchProgress,
      disconnected: !this.session.live,
      queued: this.session.runs.waiting,
      textTransport: t.textTransport,
    });
    this.root.classList.toggle("hs-has-error", t.status === "error");
  }

  // --- view state → view ---------------------------------------------------------------

  private renderState(s: ViewState, prev: ViewState): void {
    if (s.hideBos !== prev.hideBos) {
      this.panel.side.display.update(s.hideBos, this.traits.bosFirst);
      this.main.head.redraw();
    }
    if (s.mode !== prev.mode) this.renderModes();
    if (s.focus !== prev.focus || s.mode !== prev.mode || s.locked !== prev.locked) this.main.paintTokens();
    this.main.pattern.setMarks(s);
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
    this.frame.renderModes(this.state.mode, this.main.colours.byLoss(this.traits), ablationOf(this.traits) !== null);
  }
}
