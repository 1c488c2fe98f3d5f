/**
 * The token view: one `<button>` chip per token. Token text is set with `textContent` only;
 * whitespace and control characters get a visible stand-in through CSS (`data-glyph`, from the
 * shared {@link tokenSegments}), so the chip's text stays exact. Chips of one word (no
 * whitespace between them) sit in one group that never breaks across lines unless the word is
 * wider than the view.
 *
 * Painting writes only what changed: each chip keeps the colour level it shows, so moving the
 * focus from one query row to the next restyles the chips whose level differs and no others.
 */
import { cssColor, lutColor, prefersDarkText } from "./lut";
import { tokenSegments } from "./text";

function chip(token: string, index: number): HTMLButtonElement {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "hs-tok";
  button.dataset.index = String(index);
  button.tabIndex = -1;
  button.setAttribute("aria-pressed", "false");
  if (token === "") button.classList.add("hs-tok-empty");
  for (const segment of tokenSegments(token)) {
    if (segment.glyph === undefined) {
      button.appendChild(document.createTextNode(segment.text));
    } else {
      const ws = document.createElement("span");
      ws.className = segment.control ? "hs-ws hs-ctl" : "hs-ws";
      ws.dataset.glyph = segment.glyph;
      ws.textContent = segment.text;
      button.appendChild(ws);
    }
  }
  return button;
}

export interface TokenEvents {
  point(index: number, clientX: number, clientY: number): void;
  leave(): void;
  click(index: number): void;
}

export class TokenView {
  readonly el: HTMLDivElement;
  private chips: HTMLButtonElement[] = [];
  private tokens: readonly string[] = [];
  private roving = 0;
  /** What the chips show: each chip's level (-1: no colour), the table, the focus. */
  private shownLevels = new Int16Array(0);
  private shownLut: Uint8ClampedArray | null = null;
  private shownFocus: number | null = null;
  private shownLocked = false;

  constructor(private readonly events: TokenEvents) {
    this.el = document.createElement("div");
    this.el.className = "hs-tokens";
    this.el.setAttribute("role", "group");
    this.el.setAttribute("aria-label", "Prompt tokens: hover or focus a token to see its attention");
    this.el.addEventListener("pointermove", (e) => this.onPointer(e));
    this.el.addEventListener("pointerleave", () => this.events.leave());
    this.el.addEventListener("click", (e) => {
      const i = this.indexOf(e.target);
      if (i !== null) this.events.click(i);
    });
    this.el.addEventListener("focusin", (e) => this.onFocus(e));
    this.el.addEventListener("keydown", (e) => this.onKey(e));
  }

  setTokens(tokens: readonly string[]): void {
    if (sameTokens(tokens, this.tokens)) return;
    this.tokens = tokens;
    this.chips = tokens.map(chip);
    this.shownLevels = new Int16Array(tokens.length).fill(-1);
    this.shownFocus = null;
    this.shownLocked = false;
    this.roving = Math.min(this.roving, Math.max(0, tokens.length - 1));
    if (this.chips.length > 0) this.chips[this.roving].tabIndex = 0;
    this.el.replaceChildren(...wordGroups(tokens, this.chips));
  }

  chipAt(index: number): HTMLButtonElement | undefined {
    return this.chips[index];
  }

  /**
   * Colour every chip by `levels[i]` (0…255, LUT index; -1 for no colour) and mark the focus.
   * Only chips whose level (or the table) changed are restyled. Returns how many were.
   */
  paint(levels: Int16Array | null, focus: number | null, locked: boolean, lut: Uint8ClampedArray): number {
    const all = lut !== this.shownLut;
    this.shownLut = lut;
    const colours = chipColours(lut);
    const shown = this.shownLevels;
    let restyled = 0;
    for (let i = 0; i < this.chips.length; i++) {
      const lv = levels === null || i >= levels.length || levels[i] < 0 ? -1 : Math.min(255, levels[i]);
      if (lv === shown[i] && !all) continue;
      const c = this.chips[i];
      restyled++;
      shown[i] = lv;
      c.style.backgroundColor = lv < 0 ? "" : colours.background[lv];
      c.style.color = lv < 0 ? "" : colours.text[lv];
    }
    if (focus !== this.shownFocus || locked !== this.shownLocked) {
      const old = this.shownFocus === null ? undefined : this.chips[this.shownFocus];
      old?.classList.remove("hs-tok-focus");
      old?.setAttribute("aria-pressed", "false");
      const now = focus === null ? undefined : this.chips[focus];
      now?.classList.add("hs-tok-focus");
      now?.setAttribute("aria-pressed", String(locked));
      this.shownFocus = now === undefined ? null : focus;
      this.shownLocked = locked;
    }
    return restyled;
  }

  private indexOf(target: EventTarget | null): number | null {
    const el = target instanceof Element ? target.closest<HTMLElement>(".hs-tok") : null;
    if (el === null || !this.el.contains(el)) return null;
    const i = Number(el.dataset.index);
    return Number.isInteger(i) ? i : null;
  }

  private onPointer(e: PointerEvent): void {
    const i = this.indexOf(e.target);
    if (i === null) this.events.leave();
    else this.events.point(i, e.clientX, e.clientY);
  }

  private onFocus(e: FocusEvent): void {
    const i = this.indexOf(e.target);
    if (i === null) return;
    const box = this.chips[i].getBoundingClientRect(); // before the write below
    this.moveRoving(i);
    this.events.point(i, box.left + box.width / 2, box.bottom);
  }

  private onKey(e: KeyboardEvent): void {
    const step: Record<string, number> = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    const jump: Record<string, number> = { Home: 0, End: this.chips.length - 1 };
    const current = this.indexOf(e.target);
    if (current === null) return;
    let next: number;
    if (e.key in step) next = current + step[e.key];
    else if (e.key in jump) next = jump[e.key];
    else return;
    e.preventDefault();
    next = Math.max(0, Math.min(this.chips.length - 1, next));
    this.chips[next].focus();
  }

  private moveRoving(i: number): void {
    if (this.chips[this.roving]) this.chips[this.roving].tabIndex = -1;
    this.roving = i;
    this.chips[i].tabIndex = 0;
  }
}

/** Whether token `i` starts a new word: whitespace (or an empty token) on either side. */
export function startsWord(tokens: readonly string[], i: number): boolean {
  if (i === 0) return true;
  const prev = tokens[i - 1];
  const tok = tokens[i];
  return prev === "" || tok === "" || /\s$/u.test(prev) || /^\s/u.test(tok);
}

/** The chips grouped into words, with a line break after every token that ends a line. */
function wordGroups(tokens: readonly string[], chips: readonly HTMLButtonElement[]): HTMLElement[] {
  const out: HTMLElement[] = [];
  let word: HTMLElement | null = null;
  chips.forEach((c, i) => {
    if (word === null || startsWord(tokens, i)) {
      word = document.createElement("span");
      word.className = "hs-word";
      out.push(word);
    }
    word.appendChild(c);
    if (tokens[i].endsWith("\n")) {
      out.push(lineBreak());
      word = null;
    }
  });
  return out;
}

/** A full-width flex item: the token after a newline starts a new line. */
function lineBreak(): HTMLElement {
  const el = document.createElement("span");
  el.className = "hs-break";
  el.setAttribute("aria-hidden", "true");
  return el;
}

function sameTokens(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

/** A chip's CSS colours at every level of a table: background, and the text that reads on it. */
interface ChipColours {
  readonly background: readonly string[];
  readonly text: readonly string[];
}

const chipColourCache = new WeakMap<Uint8ClampedArray, ChipColours>();

function chipColours(lut: Uint8ClampedArray): ChipColours {
  let colours = chipColourCache.get(lut);
  if (colours === undefined) {
    const background: string[] = [];
    const text: string[] = [];
    for (let lv = 0; lv < 256; lv++) {
      background.push(cssColor(lut, lv));
      text.push(prefersDarkText(lutColor(lut, lv)) ? "#000" : "#fff");
    }
    colours = { background, text };
    chipColourCache.set(lut, colours);
  }
  return colours;
}
