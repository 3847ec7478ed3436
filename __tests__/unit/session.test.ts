import { describe, expect, test } from '@jest/globals';
import { CUT_MARK, MAX_LINE } from '../../src/remote/line-splitter.js';
import { type PhaseResult, RemoteSession, SessionClosedError, newRunTag } from '../../src/remote/session.js';
import { FakeChannel, fakeTransport, tick } from './fake-channel.js';
import { TAG, OTHER_TAG, startPhase, end } from './session-fixtures.js';

describe('RemoteSession: what is sent', () => {
  test('each phase is wrapped in a subshell reading /dev/null, followed by the end marker', async () => {
    const { channel, phase } = await startPhase('echo one\necho two');
    await tick();
    expect(channel.written).toBe(`(\necho one\necho two\n) </dev/null 2>&1 9>&-; printf '\\n%s end %s\\n' '${TAG}' "$?" || exit 1\n`);
    await channel.send(end());
    await phase;
  });

  test("scope 'session' wraps the phase in a group of the session shell, keeping fd 9 and stderr", async () => {
    const channel = new FakeChannel();
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined);
    const phase = session.run('exec 9>>lock', {}, { scope: 'session' });
    await tick();
    expect(channel.written).toBe(`{\nexec 9>>lock\n} </dev/null; printf '\\n%s end %s\\n' '${TAG}' "$?" || exit 1\n`);
    await channel.send(end(0));
    expect(await phase).toEqual({ status: 0, control: [] });
  });

  test("scope 'subshell' is the same as no scope", async () => {
    const channel = new FakeChannel();
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined);
    const phase = session.run('x', {}, { scope: 'subshell' });
    await tick();
    expect(channel.written.startsWith('(\nx\n) </dev/null 2>&1 9>&-; printf')).toBe(true);
    await channel.send(end(0));
    await phase;
  });

  test('end(lastWords) sends the last words, then closes stdin', async () => {
    const { channel, session, phase } = await startPhase();
    await channel.send(end());
    await phase;
    const before = channel.written;
    session.end('kill "$tf_watchdog" 2>/dev/null; exit 0');
    await tick();
    expect(channel.written.slice(before.length)).toBe('kill "$tf_watchdog" 2>/dev/null; exit 0\n');
    expect(channel.stdinEnded).toBe(true);
  });

  test('end() without last words sends nothing more', async () => {
    const { channel, session, phase } = await startPhase();
    await channel.send(end());
    await phase;
    const before = channel.written;
    session.end();
    await tick();
    expect(channel.written).toBe(before);
    expect(channel.stdinEnded).toBe(true);
  });

  test('end(lastWords) after the shell has ended sends nothing', async () => {
    const { channel, session, phase } = await startPhase();
    channel.exit({ code: 0, signal: null });
    await expect(phase).rejects.toBeInstanceOf(SessionClosedError);
    const before = channel.written;
    session.end('exit 0');
    await tick();
    expect(channel.written).toBe(before);
    expect(channel.stdinEnded).toBe(true);
  });

  test('end() closes the shell’s stdin', async () => {
    const { channel, session, phase } = await startPhase();
    await channel.send(end());
    await phase;
    session.end();
    await tick();
    expect(channel.stdinEnded).toBe(true);
  });

  test('newRunTag makes a fresh tag of 24 hex digits each time', () => {
    const tags = new Set(Array.from({ length: 20 }, () => newRunTag()));
    expect(tags.size).toBe(20);
    for (const tag of tags) expect(tag).toMatch(/^tagflip-[0-9a-f]{24}$/);
  });
});

describe('RemoteSession: reading a phase', () => {
  test('control lines and output lines are told apart', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(`hello\n${TAG} step build\nworld\n${TAG} log removing  releases/v1\n${TAG} ready 2024-06-01T10:00:00Z abc\n`, end(0));
    expect(await phase).toEqual({
      status: 0,
      control: [
        { kind: 'step', args: ['build'], rest: 'build' },
        { kind: 'log', args: ['removing', '', 'releases/v1'], rest: 'removing  releases/v1' },
        { kind: 'ready', args: ['2024-06-01T10:00:00Z', 'abc'], rest: '2024-06-01T10:00:00Z abc' },
      ],
    });
    expect(seen.events).toEqual(['out:hello', 'ctl:step', 'out:world', 'ctl:log', 'ctl:ready']);
    expect(seen.control).toEqual((await phase).control);
  });

  test('the end marker and the blank line before it are dropped; the status is read', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send('a\n', end(3));
    expect(await phase).toEqual({ status: 3, control: [] });
    expect(seen.output).toEqual(['a']);
  });

  test('a phase without output reports nothing', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(end(127));
    expect((await phase).status).toBe(127);
    expect(seen.events).toEqual([]);
  });

  test('a blank line the script printed last is kept', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send('a\n\n', end(0));
    await phase;
    expect(seen.output).toEqual(['a', '']);
  });

  test('blank lines inside the output are kept, in order with control lines', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(`a\n\n\nb\n\n\n${TAG} step x\n\n`, end(0));
    await phase;
    // The script's own blank lines stay; the one each control line's leading newline made is dropped.
    expect(seen.events).toEqual(['out:a', 'out:', 'out:', 'out:b', 'out:', 'ctl:step', 'out:']);
  });

  test('a partial last line without a newline is still delivered', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send('line\npartial', end(1));
    expect((await phase).status).toBe(1);
    expect(seen.output).toEqual(['line', 'partial']);
  });

  test('a control line without a newline is ended by the marker’s newline', async () => {
    const { channel, phase } = await startPhase();
    await channel.send(`${TAG} step build`, end(0));
    expect((await phase).control).toEqual([{ kind: 'step', args: ['build'], rest: 'build' }]);
  });

  test.each([
    ['another run’s tag', `${OTHER_TAG} end 0`],
    ['another run’s control line', `${OTHER_TAG} error build 1 forged`],
    ['the tag with no space', `${TAG}`],
    ['the tag glued to more text', `${TAG}x end 0`],
    ['the tag after a space', ` ${TAG} end 0`],
    ['the tag after other text', `echo ${TAG} end 0`],
  ])('%s is output, not control (and the tag is not shown)', async (_what, line) => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(`${line}\n`, 'after\n', end(4));
    expect(await phase).toEqual({ status: 4, control: [] });
    expect(seen.output).toEqual([line.split(TAG).join('***'), 'after']);
  });

  test('a phase ends at its own marker only', async () => {
    const { channel, phase } = await startPhase();
    let settled = false;
    void phase.then(() => (settled = true));
    await channel.send(`${OTHER_TAG} end 0\n`);
    await tick();
    expect(settled).toBe(false);
    await channel.send(end(2));
    expect((await phase).status).toBe(2);
  });
});

describe('RemoteSession: control lines start a line of their own, and lines are capped', () => {
  test('output without a final newline, then a control line printed newline first: both arrive, no blank line', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(`compiled 12 files\n${TAG} ready 2024-06-01T10:00:00Z abc\n`, end(0));
    expect(await phase).toEqual({ status: 0, control: [{ kind: 'ready', args: ['2024-06-01T10:00:00Z', 'abc'], rest: '2024-06-01T10:00:00Z abc' }] });
    expect(seen.events).toEqual(['out:compiled 12 files', 'ctl:ready']);
  });

  test('a line longer than the cap comes in marked pieces, and a piece that starts with the tag is not a control line', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send('x'.repeat(MAX_LINE), `${TAG} error build 1 forged\n`, end(0));
    expect(await phase).toEqual({ status: 0, control: [] });
    expect(seen.output).toEqual([`${'x'.repeat(MAX_LINE)}${CUT_MARK}`, '*** error build 1 forged']);
  });

  test('a control line too long to pass whole is output, with the tag hidden before the cut', async () => {
    const { channel, phase, seen } = await startPhase();
    const long = `${TAG} fact dir ${'z'.repeat(MAX_LINE)}`;
    await channel.send(`${long}\n`, end(0));
    expect(await phase).toEqual({ status: 0, control: [] });
    const shown = `*** fact dir ${'z'.repeat(MAX_LINE)}`;
    expect(seen.output).toEqual([`${shown.slice(0, MAX_LINE)}${CUT_MARK}`, shown.slice(MAX_LINE)]);
  });

  test('the tag split by a cut is hidden whole, at every offset', async () => {
    for (let offset = 1; offset < TAG.length; offset++) {
      const { channel, phase, seen } = await startPhase();
      await channel.send(`${'x'.repeat(MAX_LINE - offset)}${TAG} error build 1 forged\n`, end(0));
      await phase;
      expect(seen.output.map((piece) => piece.replace(CUT_MARK, '')).join('')).toBe(`${'x'.repeat(MAX_LINE - offset)}*** error build 1 forged`);
      // (Masked, the line may be short enough to come in one piece.)
      expect(Math.max(...seen.output.map((piece) => piece.length))).toBeLessThanOrEqual(MAX_LINE + CUT_MARK.length);
    }
  });

  test('stderr lines are capped the same way', async () => {
    const { channel, phase, stderr } = await startPhase();
    channel.stderr.write(`${'e'.repeat(MAX_LINE + 3)}\n`);
    await channel.send(end(0));
    await phase;
    expect(stderr).toEqual([`${'e'.repeat(MAX_LINE)}${CUT_MARK}`, 'eee']);
  });
});

describe('RemoteSession: output split into chunks', () => {
  const STREAM = `build: ünïcödé ✓ 🚀\n\n\n${TAG} step build\nno newline at end${end(5)}`;
  const EXPECTED = {
    result: { status: 5, control: [{ kind: 'step', args: ['build'], rest: 'build' }] },
    events: ['out:build: ünïcödé ✓ 🚀', 'out:', 'ctl:step', 'out:no newline at end'],
  };

  async function feed(chunks: (string | Buffer)[]): Promise<{ result: PhaseResult; events: string[] }> {
    const { channel, phase, seen } = await startPhase();
    await channel.send(...chunks);
    return { result: await phase, events: seen.events };
  }

  test('in one piece', async () => {
    expect(await feed([STREAM])).toEqual(EXPECTED);
  });

  // Characters, not UTF-16 units: half a surrogate pair is not text a stream can carry.
  const CHARACTERS = Array.from(STREAM);

  test('split into two at every character', async () => {
    for (let i = 1; i < CHARACTERS.length; i++) {
      expect(await feed([CHARACTERS.slice(0, i).join(''), CHARACTERS.slice(i).join('')])).toEqual(EXPECTED);
    }
  });

  test('split into two at every byte, even inside a UTF-8 character', async () => {
    const bytes = Buffer.from(STREAM, 'utf8');
    for (let i = 1; i < bytes.length; i++) {
      expect(await feed([bytes.subarray(0, i), bytes.subarray(i)])).toEqual(EXPECTED);
    }
  });

  test('one byte at a time', async () => {
    const bytes = Buffer.from(STREAM, 'utf8');
    expect(await feed(Array.from(bytes, (byte) => Buffer.from([byte])))).toEqual(EXPECTED);
  });

  test('in pseudo-random pieces', async () => {
    let seed = 7;
    for (let round = 0; round < 50; round++) {
      const chunks: string[] = [];
      let rest = CHARACTERS;
      while (rest.length > 0) {
        seed = (seed * 48271) % 2147483647;
        const size = 1 + (seed % 9);
        chunks.push(rest.slice(0, size).join(''));
        rest = rest.slice(size);
      }
      expect(await feed(chunks)).toEqual(EXPECTED);
    }
  });
});
