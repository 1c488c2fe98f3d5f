/**
 * "What the head writes": the selected head's OV circuit for the locked token (the tokens whose
 * logits its output raises and lowers most when it attends fully to that token) and its direct
 * logit attribution at the locked position, for the predicted token and one typed token.
 *
 * Folded until opened; while open, locking a token (a click, or Enter on a focused chip) or
 * switching heads asks the kernel (docs/wire.md). Hover never does. Replies to older requests or
 * runs are dropped. Token strings are untrusted: text only, never markup.
 */
import type { Channel } from "../model/channel";
import { LatestRequests, parseOVMessage, signed, type DLAReply, type Logit, type OVMessage, type OVReply } from "../model/ov";
import { button, fold, h } from "../renderers/dom";
import { quoteToken } from "../renderers/text";
import { ActionError } from "./status";

export interface OVInput {
  readonly runId: number;
  readonly layer: number;
  readonly head: number;
  readonly tokens: readonly string[];
  /** The locked token (key token for the OV lists, query position for DLA), or null. */
  readonly position: number | null;
  /** The widget has a model and its kernel answers. */
  readonly canRun: boolean;
  /** Why the weights cannot be read ("" when they can). */
  readonly unavailable: string;
}

/** A typed token longer than this is refused here (the kernel refuses it too). */
const MAX_TOKEN_CHARS = 200;

export class OVPanel {
  readonly el: HTMLDetailsElement;
  private readonly note: HTMLElement;
  private readonly ovBox: HTMLElement;
  private readonly ovTitle: HTMLElement;
  private readonly raised: HTMLOListElement;
  private readonly lowered: HTMLOListElement;
  private readonly ovError = new ActionError();
  private readonly dlaBox: HTMLElement;
  private readonly dlaTitle: HTMLElement;
  private readonly dlaList: HTMLUListElement;
  private readonly normLine: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly submit: HTMLButtonElement;
  /** An error of the typed token, next to the input. */
  readonly tokenError = new ActionError();
  private readonly requests: LatestRequests;
  private readonly unlisten: () => void;
  private last: OVInput | null = null;
  private askedKey = "";
  /** The typed token of the DLA shown (the kernel accepted it), or null. */
  private extra: string | null = null;
  /** The typed token of the request in flight. */
  private asking: string | null = null;
  private ov: OVReply | null = null;
  private dla: DLAReply | null = null;
  private pickerNote: HTMLElement | null = null;
  private wasOpen = false;

  constructor(private readonly channel: Channel, idPrefix: string) {
    this.requests = new LatestRequests(idPrefix);
    this.el = fold("hs-ov", "What the head writes (OV, logit attribution)", false);
    this.note = h("p", "hs-ov-note hs-hint");
    this.note.setAttribute("role", "status");
    this.ovTitle = h("p", "hs-ov-title");
    this.raised = h("ol", "hs-ov-list hs-ov-raised");
    this.raised.setAttribute("aria-label", "Tokens whose logits the head raises most");
    this.lowered = h("ol", "hs-ov-list hs-ov-lowered");
    this.lowered.setAttribute("aria-label", "Tokens whose logits the head lowers most");
    this.ovBox = h("div", "hs-ov-box");
    this.ovBox.append(this.ovTitle, h("p", "hs-ov-sub", "raises"), this.raised, h("p", "hs-ov-sub", "lowers"), this.lowered);
    this.dlaTitle = h("p", "hs-ov-title");
    this.dlaList = h("ul", "hs-dla-list");
    this.dlaList.setAttribute("aria-label", "The head's direct contribution to these logits");
    this.normLine = h("p", "hs-dla-norm hs-hint");
    this.dlaBox = h("div", "hs-dla-box");
    this.dlaBox.append(this.dlaTitle, this.dlaList, this.normLine);
    const label = h("label", "hs-field-label", "Another token");
    this.input = h("input", "hs-dla-input hs-text-input");
    this.input.type = "text";
    this.input.id = `${idPrefix}-dla-token`;
    this.input.maxLength = MAX_TOKEN_CHARS;
    this.input.spellcheck = false;
    this.input.placeholder = "one token, e.g. ' the'";
    label.htmlFor = this.input.id;
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.ask();
      }
    });
    this.submit = button("hs-dla-submit", "Attribute", () => this.ask(), "Attribute the typed token's logit to the head");
    const row = h("div", "hs-dla-row");
    row.append(this.input, this.submit);
    this.tokenError.el.classList.add("hs-dla-error");
    this.ovError.el.classList.add("hs-ov-error");
    this.el.append(this.note, this.ovBox, this.ovError.el, this.dlaBox, label, row, this.tokenError.el);
    this.el.addEventListener("toggle", () => {
      if (this.last !== null) this.update(this.last);
    });
    this.unlisten = channel.onCustom((content) => {
      const message = parseOVMessage(content);
      if (message !== null) this.receive(message);
    });
    this.render();
  }

  dispose(): void {
    this.unlisten();
  }

  /** The view changed (run, head, locked token, kernel): ask again if what is shown is stale. */
  update(input: OVInput): void {
    const previous = this.last;
    if (previous !== null && sameInput(previous, input) && this.el.open === this.wasOpen) return; // a hover
    this.wasOpen = this.el.open;
    this.last = input;
    if (previous !== null && previous.runId !== input.runId) this.extra = null;
    const ready = this.el.open && input.canRun && input.unavailable === "" && input.position !== null;
    const key = ready ? `${input.runId}|${input.layer}|${input.head}|${input.position}` : "";
    if (key !== this.askedKey) {
      this.askedKey = key;
      this.requests.reset();
      this.ov = this.dla = null;
      this.ovError.set("");
      this.tokenError.set("");
      if (key !== "") {
        this.send("ov", []);
        this.send("dla", this.extra === null ? [] : [this.extra]);
      }
    }
    this.render();
  }

  /** In the score picker's section: why the copying score is not offered ("" removes it). */
  renderPickerNote(section: HTMLElement, reason: string): void {
    if (reason === "") {
      this.pickerNote?.remove();
      this.pickerNote = null;
      return;
    }
    if (this.pickerNote === null) this.pickerNote = h("p", "hs-copying-note hs-hint");
    this.pickerNote.textContent = `Copying score unavailable: ${reason}`;
    if (this.pickerNote.parentElement !== section) section.append(this.pickerNote);
  }

  private send(kind: "ov" | "dla", tokens: string[]): void {
    const t = this.last;
    if (t === null || t.position === null) return;
    const message: Record<string, unknown> = {
      type: `request_${kind}`,
      request_id: this.requests.next(kind),
      layer: t.layer,
      head: t.head,
      position: t.position,
    };
    if (kind === "dla") {
      message.tokens = tokens;
      this.asking = tokens[0] ?? null;
    }
    this.channel.send(message);
  }

  /** Attribute the typed token (Enter or the button). */
  private ask(): void {
    const text = this.input.value;
    if (this.askedKey === "") {
      this.tokenError.set("Lock a token first: its position is where the logits are attributed.");
      return;
    }
    if (text === "") {
      this.tokenError.set("Type one token, e.g. ' the'.");
      return;
    }
    this.tokenError.set("");
    this.send("dla", [text]);
    this.render();
  }

  private receive(message: OVMessage): void {
    if (!this.requests.accept(message)) return; // an older request's answer
    const runId = this.last?.runId;
    if ((message.kind === "ov" || message.kind === "dla") && message.runId !== runId) return;
    if (message.kind === "ov") {
      this.ov = message;
      this.ovError.set("");
    } else if (message.kind === "dla") {
      this.dla = message;
      this.extra = this.asking;
      this.tokenError.set("");
    } else if (message.kind === "dla_error" && message.field === "token") {
      this.tokenError.set(message.message); // the DLA shown stays
    } else {
      this.ovError.set(message.message);
    }
    this.render();
  }

  private render(): void {
    const t = this.last;
    const live = t !== null && t.canRun && t.unavailable === "";
    this.input.disabled = this.submit.disabled = !live;
    this.note.textContent = this.noteText();
    const ov = this.ov;
    this.ovBox.hidden = ov === null;
    if (ov !== null && t !== null) {
      this.ovTitle.textContent = `If L${ov.layer} H${ov.head} attends only to ${quoteToken(ov.token)} (token ${ov.position}), its output (OV circuit, no LayerNorm):`;
      fill(this.raised, ov.raised);
      fill(this.lowered, ov.lowered);
    }
    const dla = this.dla;
    this.dlaBox.hidden = dla === null;
    if (dla !== null) {
      const at = t?.tokens[dla.position];
      this.dlaTitle.textContent = `Direct logit attribution of L${dla.layer} H${dla.head} at token ${dla.position}${at === undefined ? "" : ` ${quoteToken(at)}`} (predicting the next token):`;
      const items = dla.entries.map((e, i) => {
        const item = h("li", "hs-dla-entry");
        item.dataset.token = e.token;
        const name = h("span", "hs-ov-token", `${i === 0 ? "predicted " : ""}${quoteToken(e.token)}`);
        const value = h("span", "hs-ov-value", signed(e.value));
        const rank = h("span", "hs-dla-rank hs-hint", `rank ${e.rank} of ${dla.nHeads} heads · logit ${e.logit.toFixed(3)}`);
        item.append(name, value, rank);
        return item;
      });
      this.dlaList.replaceChildren(...items);
      this.normLine.textContent = `Final norm: ${dla.norm}.`;
    }
  }

  private noteText(): string {
    const t = this.last;
    if (t === null) return "";
    if (t.unavailable !== "") return `Unavailable: ${t.unavailable}`;
    if (!t.canRun) return "Needs a live kernel with the model (headscope.show(model, prompt)).";
    if (t.position === null) return "Click a token (or press Enter on it) to lock it: its OV lists and the logit attribution at its position show here.";
    if (this.requests.pending("ov") || this.requests.pending("dla")) return "Computing in the kernel…";
    return "";
  }
}

function sameInput(a: OVInput, b: OVInput): boolean {
  return a.runId === b.runId && a.layer === b.layer && a.head === b.head && a.position === b.position &&
    a.canRun === b.canRun && a.unavailable === b.unavailable && a.tokens === b.tokens;
}

function fill(list: HTMLOListElement, logits: readonly Logit[]): void {
  list.replaceChildren(
    ...logits.map(({ token, value }) => {
      const item = h("li", "hs-ov-item");
      item.dataset.token = token;
      item.append(h("span", "hs-ov-token", quoteToken(token)), h("span", "hs-ov-value", signed(value)));
      return item;
    }),
  );
}
