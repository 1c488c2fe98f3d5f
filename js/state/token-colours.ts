/**
 * What colours the token chips: the shown head's attention at the focused token (by the mode),
 * or the ablation's loss change, which a new ablation switches to; and the effect panel below.
 */
import { focusLevels, type HeadPattern } from "../model/head";
import { ablationOf, changeScale, lossLevels } from "../model/interventions";
import type { Traits } from "../model/traits";
import type { TokenColour } from "../renderers/frame";
import { divergingLutFor, lutFor, type Theme } from "../renderers/lut";
import type { AblationEffect } from "../renderers/next-tokens";
import type { TokenView } from "../renderers/tokens";
import type { ViewState } from "./view-state";

export class TokenColours {
  private colour: TokenColour = "attention";
  /** The ablation last seen, to tell a new one. */
  private ablationKey = "";

  constructor(
    private readonly tokens: TokenView,
    private readonly effect: AblationEffect,
  ) {}

  /** Colour by attention or by loss change (the loss change shows only while there is an ablation). */
  set(colour: TokenColour): void {
    this.colour = colour;
  }

  /** A new ablation (from the panel or from Python) colours the tokens by its loss change. */
  follow(t: Traits): void {
    const a = ablationOf(t);
    const key = a === null ? "" : `${a.heads.join(";")}|${a.label}`;
    if (key !== this.ablationKey) {
      this.ablationKey = key;
      if (key !== "") this.colour = "loss";
    }
  }

  /** Whether the tokens show the ablation's loss change. */
  byLoss(t: Traits): boolean {
    return this.colour === "loss" && ablationOf(t) !== null;
  }

  /** Paint the chips and the effect panel; `current` is the shown head of this run, or null. */
  paint(t: Traits, state: ViewState, theme: Theme, current: () => HeadPattern | null): void {
    const { focus, mode, locked } = state;
    const a = ablationOf(t);
    const loss = this.colour === "loss" && a !== null;
    const diverging = divergingLutFor(theme);
    if (loss) {
      this.tokens.paint(lossLevels(a), focus, locked, diverging);
    } else {
      const p = current();
      const levels = p !== null && focus !== null ? focusLevels(p, mode, focus) : null;
      this.tokens.paint(levels, focus, locked, lutFor(theme));
    }
    const position = focus ?? state.hoverToken;
    this.effect.update(a, t.tokens, position, diverging, a === null ? 1 : changeScale(a), loss);
  }
}
