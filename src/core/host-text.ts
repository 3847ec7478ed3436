/**
 * Control characters that a terminal (or a log read with `cat` or `less -R`)
 * obeys rather than shows: C0 but tab and newline, DEL, and C1, whose
 * U+009B is CSI for terminals that read 8-bit controls. A host prints what it
 * likes: `\e]0;…\a` retitles the operator's terminal, `\e[2J` clears it, `\r`
 * or `\e[1A` writes over a line tagflip printed. Shown escaped, they do nothing.
 */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
/** A colour (SGR: ESC [ parameters m), or one control character. */
const COLOUR_OR_CONTROL = /\u001b\[[0-9;:]*m|[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Text from a host (its output, its error text, names it reports), as it may
 * be shown: every control character as `\xHH`, but tab and newline (a newline
 * still ends a line), and the CR of a CRLF line end, which is dropped. With
 * `colours`, colour sequences (SGR, `\e[31m`) are kept too: the Actions log
 * shows them as colours, and a colour cannot move the cursor, clear, retitle
 * or start a line. Text without control characters comes back as it is.
 */
export function showControls(text: string, { colours = false }: { colours?: boolean } = {}): string {
  if (!CONTROL.test(text)) return text;
  return text.replace(colours ? COLOUR_OR_CONTROL : CONTROLS, (match: string, offset: number) => {
    if (match.length > 1) return match;
    if (match === '\r' && (offset + 1 === text.length || text[offset + 1] === '\n')) return '';
    return `\\x${match.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** Whether the text holds a control character showControls would escape. */
export function hasControls(text: string): boolean {
  return CONTROL.test(text);
}
