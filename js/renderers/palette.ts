/**
 * The stylesheet's colours that canvas drawing needs (accent, muted text, raised background,
 * font). Reading them is a computed-style read, which forces a style recalculation when the page
 * has pending DOM writes; so they are read once per theme change (from the theme watch, where
 * the style is clean) and every canvas takes them from here.
 */

export interface Colours {
  readonly accent: string;
  readonly muted: string;
  readonly raised: string;
  readonly font: string;
}

/** What canvases use until the view is attached and its style can be read. */
export const FALLBACK_COLOURS: Colours = {
  accent: "#e11d48",
  muted: "#6b7280",
  raised: "#eef0f4",
  font: "sans-serif",
};

const NAMES: Record<keyof Colours, string> = {
  accent: "--hs-accent",
  muted: "--hs-muted",
  raised: "--hs-raised",
  font: "--hs-font",
};

export class Palette {
  private current: Colours = FALLBACK_COLOURS;

  get colours(): Colours {
    return this.current;
  }

  /**
   * Read the colours of `el`'s computed style; true when they changed. A detached element has
   * no computed style: the colours are kept.
   */
  read(el: Element): boolean {
    if (!el.isConnected) return false;
    const style = getComputedStyle(el);
    const next: Record<keyof Colours, string> = { ...FALLBACK_COLOURS };
    for (const key of Object.keys(NAMES) as (keyof Colours)[]) {
      next[key] = style.getPropertyValue(NAMES[key]).trim() || FALLBACK_COLOURS[key];
    }
    const changed = (Object.keys(NAMES) as (keyof Colours)[]).some((k) => next[k] !== this.current[k]);
    if (changed) this.current = next;
    return changed;
  }
}
