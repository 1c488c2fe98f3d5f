/**
 * Browser-only view state (never synced to the kernel): which token is in focus, whether it is
 * locked, query-vs-key mode, and what the pointer is over. Transitions are pure functions.
 */

/** "query": colour by the attention a token pays (its row); "key": by what it receives (its column). */
export type Mode = "query" | "key";

export interface Cell {
  readonly query: number;
  readonly key: number;
}

export interface ViewState {
  readonly mode: Mode;
  /** The token whose row (query mode) or column (key mode) colours the token view. */
  readonly focus: number | null;
  readonly locked: boolean;
  /** Token chip under the pointer or keyboard focus. */
  readonly hoverToken: number | null;
  /** Pattern cell under the pointer. */
  readonly hoverCell: Cell | null;
  /** Display option: key 0 (the model's BOS) hidden and rows renormalized (state/reweight). */
  readonly hideBos: boolean;
}

export const initialViewState: ViewState = {
  mode: "query",
  focus: null,
  locked: false,
  hoverToken: null,
  hoverCell: null,
  hideBos: false,
};

export function pointToken(s: ViewState, token: number): ViewState {
  return s.locked ? { ...s, hoverToken: token } : { ...s, focus: token, hoverToken: token };
}

export function leaveToken(s: ViewState): ViewState {
  return { ...s, hoverToken: null, focus: s.locked ? s.focus : null };
}

/** Click: lock on the token; clicking the locked token again unlocks. */
export function clickToken(s: ViewState, token: number): ViewState {
  if (s.locked && s.focus === token) return { ...s, locked: false };
  return { ...s, focus: token, locked: true, hoverToken: token };
}

export function unlock(s: ViewState): ViewState {
  return { ...s, locked: false, focus: s.hoverToken };
}

export function setMode(s: ViewState, mode: Mode): ViewState {
  return { ...s, mode };
}

export function setHideBos(s: ViewState, hideBos: boolean): ViewState {
  return s.hideBos === hideBos ? s : { ...s, hideBos };
}

/** Hovering a pattern cell focuses its query token (query mode) or key token (key mode). */
export function pointCell(s: ViewState, cell: Cell | null): ViewState {
  if (cell === null) return { ...s, hoverCell: null, focus: s.locked ? s.focus : null };
  const focus = s.locked ? s.focus : s.mode === "query" ? cell.query : cell.key;
  return { ...s, hoverCell: cell, focus };
}

/** Drop positions that no longer exist after the prompt changed to `seqLen` tokens. */
export function clampToLength(s: ViewState, seqLen: number): ViewState {
  const inRange = (i: number | null): number | null => (i !== null && i < seqLen ? i : null);
  const focus = inRange(s.focus);
  const cell = s.hoverCell && s.hoverCell.query < seqLen && s.hoverCell.key < seqLen ? s.hoverCell : null;
  return { ...s, focus, locked: s.locked && focus !== null, hoverToken: inRange(s.hoverToken), hoverCell: cell };
}

/** The pair of positions a token tooltip describes, given the focus and the hovered token. */
export function tooltipPair(s: ViewState, strongest: (mode: Mode, token: number) => number): Cell | null {
  const hovered = s.hoverToken;
  if (hovered === null) return null;
  const anchor = s.focus !== null && s.focus !== hovered ? s.focus : null;
  if (s.mode === "query") {
    return anchor === null ? { query: hovered, key: strongest("query", hovered) } : { query: anchor, key: hovered };
  }
  return anchor === null ? { query: strongest("key", hovered), key: hovered } : { query: hovered, key: anchor };
}
