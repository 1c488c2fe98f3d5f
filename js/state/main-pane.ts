/**
 * The view's main column: the token chips, the ablation's effect and the pattern canvas, with
 * pointing and clicking on them, over the shown head (state/shown-head) and the token colours.
 */
import type { AnyModel } from "../model/anywidget";
import { weight } from "../model/head";
import type { HeadHub } from "../model/heads";
import { ablationOf } from "../model/interventions";
import type { Traits } from "../model/traits";
import type { Theme } from "../renderers/lut";
import { AblationEffect } from "../renderers/next-tokens";
import type { Palette } from "../renderers/palette";
import { PatternView } from "../renderers/pattern";
import { TokenView } from "../renderers/tokens";
import { pairLines, type Tooltip } from "../renderers/tooltip";
import { tokenTooltip } from "./hover";
import { ShownHead } from "./shown-head";
import type { Store } from "./store";
import { TokenColours } from "./token-colours";
import { clickToken, leaveToken, pointCell, pointToken, type Cell, type ViewState } from "./view-state";

export interface MainPaneHost {
  traits(): Traits;
  theme(): Theme;
  /** Whether the kernel answers. */
  live(): boolean;
  /** What the status line says changed (a head drawn or loading, the head's error). */
  statusChanged(): void;
}

export class MainPane {
  readonly tokens: TokenView;
  readonly effect = new AblationEffect();
  readonly pattern: PatternView;
  /** The head drawn in the pattern view, as the display reweights it. */
  readonly head: ShownHead;
  /** Token colours: attention (by the mode) or the ablation's loss change. */
  readonly colours: TokenColours;

  constructor(
    model: AnyModel,
    hub: HeadHub,
    private readonly store: Store<ViewState>,
    private readonly tooltip: Tooltip,
    palette: Palette,
    private readonly host: MainPaneHost,
  ) {
    this.tokens = new TokenView({
      point: (i, x, y) => this.pointToken(i, x, y),
      leave: () => {
        store.set(leaveToken(store.get()));
        tooltip.hide();
      },
      click: (i) => store.set(clickToken(store.get(), i)),
    });
    this.pattern = new PatternView({
      point: (cell, x, y) => this.pointCell(cell, x, y),
      click: (cell) => store.set(clickToken(store.get(), store.get().mode === "query" ? cell.query : cell.key)),
    }, palette);
    this.head = new ShownHead(model, hub, this.pattern, {
      traits: () => host.traits(),
      state: () => store.get(),
      theme: () => host.theme(),
      live: () => host.live(),
      drawn: () => {
        this.paintTokens();
        host.statusChanged();
      },
      statusChanged: () => host.statusChanged(),
    });
    this.colours = new TokenColours(this.tokens, this.effect);
  }

  dispose(): void {
    this.head.dispose();
    this.pattern.dispose();
  }

  paintTokens(): void {
    this.colours.paint(this.host.traits(), this.store.get(), this.host.theme(), () => this.head.current());
  }

  // Hover: the tooltip first (it measures the page while nothing is written yet), then the
  // state, whose renderers only write (chips, overlay): no layout is forced in between.

  private pointToken(index: number, x: number, y: number): void {
    const next = pointToken(this.store.get(), index);
    const t = this.host.traits();
    const lines = tokenTooltip(t.tokens, next, index, this.head.current(), ablationOf(t), this.colours.byLoss(t), this.head.tipContext());
    this.tooltip.show(lines, x, y, this.tokens.chipAt(index));
    this.store.set(next);
  }

  private pointCell(cell: Cell | null, x: number, y: number): void {
    const p = this.head.current();
    if (cell === null || p === null) this.tooltip.hide();
    else {
      const lines = pairLines(this.host.traits().tokens, cell.query, cell.key, weight(p, cell.query, cell.key), this.head.tipContext());
      this.tooltip.show(lines, x, y, this.pattern.cellClientBox(cell, x, y));
    }
    this.store.set(pointCell(this.store.get(), cell));
  }
}
