/** The longest line passed on whole, in characters; a longer one is cut into pieces this long. */
export const MAX_LINE = 64 * 1024;

/** Ends every piece of a line that was cut, so the log shows where. */
export const CUT_MARK = `…[line cut at ${MAX_LINE} characters]`;

/** What a secret is replaced by. */
export const MASK = '***';

/**
 * Splits a stream of text into lines, holding at most `max` characters of an
 * unfinished line whatever arrives: a longer line is passed on in pieces, each
 * but the last ending with CUT_MARK, and flagged as `cut` (the last one too),
 * so that no piece of it is taken for anything but output. Each chunk is
 * scanned once, so one endless line costs linear time and constant memory.
 *
 * A line that is cut is masked before it is cut: each of `secrets` in it
 * becomes MASK first, and the cut falls in the masked text. Masking after the
 * cut cannot work: a secret split across it leaves `…S3CRE` at the end of one
 * piece and `TVALUE` at the start of the next, neither of which matches (the
 * runner's masking, like the CLI's, works within a line). A line that passes
 * whole is passed on as it came, for the reader to tell a control line from
 * output; it masks that itself (a cut line is never a control line).
 */
export class LineSplitter {
  private held: string[] = [];
  private heldLength = 0;
  /** The line being cut: what it holds masks and cuts. */
  private cutting: CutLine | null = null;
  private readonly secrets: readonly string[];

  constructor(
    private readonly emit: (line: string, cut: boolean) => void,
    private readonly max = MAX_LINE,
    secrets: readonly string[] = [],
  ) {
    // A secret with a newline in it never stands within one line; its lines are secrets of their own (secretsOf).
    this.secrets = [...new Set(secrets.filter((secret) => secret !== '' && !secret.includes('\n')))];
  }

  push(chunk: string): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf('\n', start);
      this.add(chunk.slice(start, newline < 0 ? chunk.length : newline));
      if (newline < 0) return;
      this.endLine();
      start = newline + 1;
    }
  }

  private add(text: string): void {
    if (text === '') return;
    if (this.cutting) {
      this.cutting.push(text);
    } else if (this.heldLength + text.length <= this.max) {
      this.held.push(text);
      this.heldLength += text.length;
    } else {
      // Longer than a whole line may be: from here on it goes in pieces.
      this.cutting = new CutLine(this.secrets, this.max, (piece) => this.emit(piece, true));
      this.cutting.push(this.take());
      this.cutting.push(text);
    }
  }

  private endLine(): void {
    if (this.cutting) {
      this.cutting.end();
      this.cutting = null;
    } else {
      this.emit(this.take(), false);
    }
  }

  private take(): string {
    const line = this.held.join('');
    this.held = [];
    this.heldLength = 0;
    return line;
  }
}

/**
 * One line too long to pass whole: its text is masked as it streams, then cut
 * into pieces of at most `max` characters. Only as much raw text is held back
 * as a secret could still be completing (the longest secret, less one), so
 * memory stays the cap plus that, however long the line.
 *
 * A secret is replaced wherever it occurs; occurrences that overlap (one
 * secret inside another, or "abab" with secret "aba") are replaced as one
 * stretch, so no part of any of them is shown. A cut never falls inside a
 * MASK, nor between the two halves of a surrogate pair.
 */
class CutLine {
  /** Raw text not yet masked: the last `reach` characters may be the start of a secret. */
  private raw = '';
  /** How many characters at the start of `raw` are part of a masked stretch whose MASK is already out. */
  private covered = 0;
  /** Masked text not yet passed on as a piece. */
  private masked = '';
  private readonly reach: number;

  constructor(
    private readonly secrets: readonly string[],
    private readonly max: number,
    private readonly emit: (piece: string) => void,
  ) {
    this.reach = Math.max(0, ...secrets.map((secret) => secret.length - 1));
  }

  push(text: string): void {
    if (this.secrets.length === 0) {
      this.add(text);
      return;
    }
    this.raw += text;
    this.mask(false);
  }

  /** The line ended: mask and pass on what is left; the last piece has no mark. */
  end(): void {
    if (this.secrets.length > 0) this.mask(true);
    this.emit(this.masked);
    this.masked = '';
  }

  /**
   * Mask what can no longer turn out to be part of a secret: all of it at the
   * line's end, else all but the last `reach` characters (a secret starting
   * before them ends within what is held, so it is found whole).
   */
  private mask(final: boolean): void {
    const text = this.raw;
    const decided = final ? text.length : text.length - this.reach;
    if (decided <= 0) return;
    let at = 0;
    for (const [start, end] of stretches(text, this.secrets, this.covered)) {
      if (start >= decided) break;
      this.add(text.slice(at, start));
      // A stretch that began in an earlier part has its MASK out already.
      if (start > 0 || this.covered === 0) this.addMask();
      at = end;
    }
    if (at < decided) this.add(text.slice(at, decided));
    this.covered = Math.max(0, at - decided);
    this.raw = text.slice(decided);
  }

  private add(text: string): void {
    this.masked += text;
    while (this.masked.length > this.max) {
      let take = this.max;
      // Never split a surrogate pair: the piece would end in half a character.
      if (take > 1 && isHighSurrogate(this.masked.charCodeAt(take - 1))) take -= 1;
      this.emit(this.masked.slice(0, take) + CUT_MARK);
      this.masked = this.masked.slice(take);
    }
  }

  private addMask(): void {
    // Whole or not at all: a piece ending in `**` says nothing of what was there.
    if (this.masked.length + MASK.length > this.max && this.masked !== '') {
      this.emit(this.masked + CUT_MARK);
      this.masked = '';
    }
    this.add(MASK);
  }
}

/**
 * Where secrets occur in `text`, as [start, end) stretches in order, those
 * that overlap joined into one; the first `covered` characters count as one
 * already. Linear in the text for each secret.
 */
function stretches(text: string, secrets: readonly string[], covered: number): [number, number][] {
  const found: [number, number][] = covered > 0 ? [[0, covered]] : [];
  for (const secret of secrets) {
    for (let at = text.indexOf(secret); at >= 0; at = text.indexOf(secret, at + 1)) found.push([at, at + secret.length]);
  }
  if (found.length < 2) return found;
  found.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const joined: [number, number][] = [found[0]];
  for (const [start, end] of found.slice(1)) {
    const last = joined[joined.length - 1];
    if (start < last[1]) last[1] = Math.max(last[1], end);
    else joined.push([start, end]);
  }
  return joined;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
