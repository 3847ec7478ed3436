import { describe, expect, test } from '@jest/globals';
import { hasControls, showControls } from '../../src/core/host-text.js';

describe('showControls: text from a host, shown rather than obeyed', () => {
  test.each([
    ['plain text, unchanged', 'compiled 12 files ✓ 🚀', 'compiled 12 files ✓ 🚀'],
    ['tab and newline kept', 'a\tb\nc', 'a\tb\nc'],
    ['a terminal title (OSC … BEL)', '\u001b]0;pwned\u0007after', '\\x1b]0;pwned\\x07after'],
    ['clear screen, cursor home', '\u001b[2J\u001b[Hhidden', '\\x1b[2J\\x1b[Hhidden'],
    ['cursor up and erase line: writing over an earlier line', 'x\u001b[1A\u001b[2Kdeployed', 'x\\x1b[1A\\x1b[2Kdeployed'],
    ['a lone CR, which writes over the line', 'error: disk full\rok              ', 'error: disk full\\x0dok              '],
    ['the CR of a CRLF line end is dropped', 'line\r\nnext\r', 'line\nnext'],
    ['backspace, BEL, NUL, DEL', 'a\bb\u0007c\u0000d\u007f', 'a\\x08b\\x07c\\x00d\\x7f'],
    ['C1: CSI (U+009B) and NEL (U+0085)', '\u009b2Jx\u0085y', '\\x9b2Jx\\x85y'],
    ['colours, escaped too', '\u001b[31mred\u001b[0m', '\\x1b[31mred\\x1b[0m'],
  ])('%s', (_what, text, shown) => {
    expect(showControls(text)).toBe(shown);
    expect(hasControls(shown)).toBe(false);
  });

  test('with colours (the Actions log): SGR colours are kept, every other sequence is still escaped', () => {
    expect(showControls('\u001b[1;31mred\u001b[0m \u001b[38;5;208morange\u001b[m', { colours: true })).toBe('\u001b[1;31mred\u001b[0m \u001b[38;5;208morange\u001b[m');
    expect(showControls('\u001b[31m\u001b]0;title\u0007\u001b[2J\r\u001b[0m', { colours: true })).toBe('\u001b[31m\\x1b]0;title\\x07\\x1b[2J\\x0d\u001b[0m');
    // A colour is ESC [ digits m only: anything else after ESC [ is escaped.
    expect(showControls('\u001b[2;3H', { colours: true })).toBe('\\x1b[2;3H');
  });

  test('nothing escaped can start a workflow command or another line', () => {
    for (const text of ['\r::error::forged', '\n::error::forged', '\u001b[2K\r##[error]forged', '\u0085::warning::x']) {
      const lines = showControls(text, { colours: true }).split('\n');
      // After a newline (kept on purpose: it ends a line), the runner's stop-commands block keeps it inert.
      expect(lines.filter((line, i) => i === 0 && /^\s*(::|##\[)/.test(line))).toEqual([]);
      expect(lines.join('\n')).not.toMatch(/[\r\u0085]/);
    }
  });
});
