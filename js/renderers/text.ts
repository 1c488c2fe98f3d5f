/**
 * The one display transform for untrusted text (tokens, prompts): every place that shows a
 * token goes through {@link tokenSegments} (chips, which keep the exact text in the DOM) or
 * {@link displayToken} / {@link quoteToken} (tooltips, axis labels, next-token lists, history).
 *
 * - Whitespace gets a visible stand-in where the text is not quoted (`·` for a space), and
 *   always for a newline (`⏎`), a tab (`→`) and the rarer spaces (`␣`).
 * - Control characters never reach the font, where they draw as tofu boxes. They show as their
 *   standard abbreviation: a small badge in chips (`NUL`, `BEL`, `ESC`, `DEL`), `‹NUL›` in plain
 *   text. (Unicode's Control Pictures, `␀ ␇ ␛`, would be the obvious choice, but common
 *   monospace fonts such as DejaVu Sans Mono and Consolas lack them and draw tofu again.)
 * - In plain text, explicit bidi embeddings, overrides and isolates that a token opens are
 *   closed at its end, and a quoted token is itself an isolate (U+2068 … U+2069): a right-to-left
 *   override or right-to-left letters inside a token cannot reorder the rest of the line.
 *
 * Nothing here builds markup: callers set the result with `textContent` or `fillText`.
 */

export interface Segment {
  /** The exact characters of the token. */
  readonly text: string;
  /** What to draw instead of `text` (a single visible stand-in), if anything. */
  readonly glyph?: string;
  /** The stand-in is a control character's name (drawn as a badge in chips, `‹…›` in text). */
  readonly control?: boolean;
}

/** First Strong Isolate and Pop Directional Isolate. */
export const FSI = "\u2068";
export const PDI = "\u2069";

/** Unicode's abbreviations of the C0 control characters. */
const C0 = [
  "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI",
  "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US",
];

const WHITESPACE: Readonly<Record<string, string>> = { "\n": "⏎", "\t": "→" };

/**
 * The visible stand-in of one character, or undefined when it draws as itself. `spaces`:
 * whether a plain space gets its `·` (unquoted places such as chips and axis labels).
 */
export function standIn(ch: string, spaces: boolean): { glyph: string; control: boolean } | undefined {
  const white = WHITESPACE[ch];
  if (white !== undefined) return { glyph: white, control: false };
  const code = ch.codePointAt(0) ?? 0;
  if (code < 0x20) return { glyph: C0[code], control: true };
  if (code === 0x7f) return { glyph: "DEL", control: true };
  if (code >= 0x80 && code < 0xa0) return { glyph: `0x${code.toString(16).toUpperCase()}`, control: true };
  if (ch === " ") return spaces ? { glyph: "·", control: false } : undefined;
  // the other spaces (no-break, wide, line and paragraph separators)
  if (/\s/u.test(ch)) return { glyph: "␣", control: false };
  return undefined;
}

/** Split text into runs that draw as themselves and single characters with a stand-in. */
export function tokenSegments(token: string, spaces = true): Segment[] {
  const out: Segment[] = [];
  let run = "";
  for (const ch of token) {
    const s = standIn(ch, spaces);
    if (s === undefined) {
      run += ch;
      continue;
    }
    if (run) out.push({ text: run });
    run = "";
    out.push(s.control ? { text: ch, glyph: s.glyph, control: true } : { text: ch, glyph: s.glyph });
  }
  if (run) out.push({ text: run });
  return out;
}

const OPENS_EMBEDDING = new Set(["\u202a", "\u202b", "\u202d", "\u202e"]); // LRE RLE LRO RLO
const PDF = "\u202c";
const OPENS_ISOLATE = new Set(["\u2066", "\u2067", "\u2068"]); // LRI RLI FSI

/** `text` with every bidi embedding, override or isolate it leaves open closed at its end. */
export function closeBidi(text: string): string {
  const open: string[] = [];
  for (const ch of text) {
    if (OPENS_EMBEDDING.has(ch)) open.push(PDF);
    else if (OPENS_ISOLATE.has(ch)) open.push(PDI);
    else if (ch === PDF && open[open.length - 1] === PDF) open.pop();
    else if (ch === PDI && open.includes(PDI)) open.splice(open.lastIndexOf(PDI));
  }
  return open.length === 0 ? text : text + open.reverse().join("");
}

/** The text as drawn in plain text: every stand-in in place of its character, bidi closed. */
export function displayToken(token: string, spaces = true): string {
  const shown = tokenSegments(token, spaces)
    .map((s) => (s.glyph === undefined ? s.text : s.control ? `‹${s.glyph}›` : s.glyph))
    .join("");
  return closeBidi(shown);
}

/** `"token"` for running text, spaces kept (the quotes show them), controls made visible. */
export function quoteToken(token: string): string {
  return `"${displayToken(token, false)}"`;
}

/** A quoted token isolated from the line around it, for plain-text lines (tooltips). */
export function isolatedToken(token: string): string {
  return `${FSI}${quoteToken(token)}${PDI}`;
}

/** Untrusted text (a prompt) on one line: controls visible, isolated from the line around it. */
export function isolate(text: string): string {
  return `${FSI}${displayToken(text, false)}${PDI}`;
}
