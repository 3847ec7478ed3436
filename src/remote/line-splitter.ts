/** The longest line passed on whole, in characters; a longer one is cut into pieces this long. */
export const MAX_LINE = 64 * 1024;

/** Ends every piece of a line that was cut, so the log shows where. */
export const CUT_MARK = `…[line cut at ${MAX_LINE} characters]`;

/**
 * Splits a stream of text into lines, holding at most `max` characters of an
 * unfinished line whatever arrives: a longer line is passed on in pieces, each
 * but the last ending with CUT_MARK, and flagged as `cut` (the last one too),
 * so that no piece of it is taken for anything but output. Each chunk is
 * scanned once, so one endless line costs linear time and constant memory.
 */
export class LineSplitter {
  private held: string[] = [];
  private heldLength = 0;
  private cutting = false;

  constructor(
    private readonly emit: (line: string, cut: boolean) => void,
    private readonly max = MAX_LINE,
  ) {}

  push(chunk: string): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf('\n', start);
      const end = newline < 0 ? chunk.length : newline;
      while (this.heldLength + (end - start) > this.max) {
        let take = this.max - this.heldLength;
        // Never split a surrogate pair: the piece would end in half a character.
        if (take > 1 && isHighSurrogate(chunk.charCodeAt(start + take - 1))) take -= 1;
        this.hold(chunk.slice(start, start + take));
        start += take;
        this.cutting = true;
        this.emit(this.take() + CUT_MARK, true);
      }
      if (newline < 0) {
        this.hold(chunk.slice(start));
        return;
      }
      this.hold(chunk.slice(start, newline));
      const cut = this.cutting;
      this.cutting = false;
      this.emit(this.take(), cut);
      start = newline + 1;
    }
  }

  private hold(text: string): void {
    if (text === '') return;
    this.held.push(text);
    this.heldLength += text.length;
  }

  private take(): string {
    const line = this.held.join('');
    this.held = [];
    this.heldLength = 0;
    return line;
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
