import { describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CUT_MARK, MAX_LINE } from '../../src/remote/line-splitter.js';
import { LocalTransport } from '../../src/remote/local-transport.js';
import { type ControlLine, RemoteSession } from '../../src/remote/session.js';
import { FakeChannel, fakeTransport } from './fake-channel.js';
import { TAG, end } from './session-fixtures.js';

describe('sendData: bytes after a script, only once the host asks', () => {
  const bytes = Buffer.alloc(3 * 1024 * 1024, 'x');
  const asked = (session: RemoteSession, data: () => NodeJS.ReadableStream, sent: Promise<unknown>[]) => ({
    onControl: (line: ControlLine) => {
      if (line.kind === 'receive') sent.push(session.sendData(Number(line.args[0]), data()).catch((error: Error) => error));
    },
  });

  test('the phase reads exactly n bytes; the session then runs the next phase as usual', async () => {
    const transport = new LocalTransport();
    const session = await RemoteSession.open(transport, TAG, () => undefined);
    const sent: Promise<unknown>[] = [];
    const script = `printf '%s receive %s\\n' '${TAG}' ${bytes.length}; printf '%s got %s\\n' '${TAG}' "$(head -c ${bytes.length} <&8 | sha256sum | cut -c1-64)"`;
    const result = await session.run(script, asked(session, () => Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), sent), { input: true });
    expect(await Promise.all(sent)).toEqual([bytes.length]);
    expect(result.control.find((line) => line.kind === 'got')?.args[0]).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect((await session.run('echo after')).status).toBe(0);
    session.end();
    await transport.close();
  });

  // sh reads its input in blocks (dash: 8 KiB). A script whose closing line
  // ends just short of a block boundary leaves the rest of the block, the tail
  // of the wrapper, in the pipe unless it shares that closing line.
  test.each([10, 40, 60])('nothing of the wrapper is read as data when the script ends %i bytes before an 8 KiB block', async (short) => {
    const transport = new LocalTransport();
    const session = await RemoteSession.open(transport, TAG, () => undefined);
    const sent: Promise<unknown>[] = [];
    const body = `printf '%s receive %s\\n' '${TAG}' 100; printf '%s got %s\\n' '${TAG}' "$(head -c 100 <&8 | sha256sum | cut -c1-64)"`;
    const close = ') 8<&0 </dev/null 2>&1 9>&-';
    const padding = 8192 - short - `(\n${body}\n#\n${close}`.length;
    const script = `${body}\n#${'-'.repeat(padding)}`;
    const data = Buffer.alloc(100, 'd');
    const result = await session.run(script, asked(session, () => Readable.from([data]), sent), { input: true });
    await Promise.all(sent);
    expect(result.control.find((line) => line.kind === 'got')?.args[0]).toBe(createHash('sha256').update(data).digest('hex'));
    session.end();
    await transport.close();
  });

  test('data shorter than announced: rejected, stdin closed, so the phase sees its input end early', async () => {
    const transport = new LocalTransport();
    const session = await RemoteSession.open(transport, TAG, () => undefined);
    const sent: Promise<unknown>[] = [];
    const script = `printf '%s receive 100\\n' '${TAG}'; printf '%s got %s\\n' '${TAG}' "$(head -c 100 <&8 | wc -c)"`;
    const result = await session.run(script, asked(session, () => Readable.from([Buffer.alloc(40)]), sent), { input: true });
    expect(String(await sent[0])).toContain('ended after 40 of the 100 bytes');
    expect(result.control.find((line) => line.kind === 'got')?.args[0]).toBe('40');
    await transport.close();
  });
});

describe('RemoteSession: it reads no faster than its output is written', () => {
  test('while the writer is full, both streams are paused; once it drains, reading goes on where it stopped', async () => {
    const channel = new FakeChannel();
    let full = false;
    let drain: () => void = () => undefined;
    const backlog = () => (full ? new Promise<void>((resolve) => (drain = resolve)) : undefined);
    const output: string[] = [];
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined, { backlog });
    const phase = session.run('x', { onOutput: (line) => output.push(line) });
    await channel.send('one\n');
    expect(channel.stdout.isPaused()).toBe(false);
    full = true;
    await channel.send('two\n');
    expect(output).toEqual(['one', 'two']);
    expect(channel.stdout.isPaused()).toBe(true);
    expect(channel.stderr.isPaused()).toBe(true);
    // What the host prints meanwhile waits in the channel (the host's writes block once it is full).
    await channel.send('three\n', end(0));
    expect(output).toEqual(['one', 'two']);
    full = false;
    drain();
    expect(await phase).toEqual({ status: 0, control: [] });
    expect(output).toEqual(['one', 'two', 'three']);
    expect(channel.stdout.isPaused()).toBe(false);
  });

  test('secrets given to the session are masked in a cut line before the cut', async () => {
    const channel = new FakeChannel();
    const output: string[] = [];
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined, { secrets: ['S3CRETVALUE'] });
    const phase = session.run('x', { onOutput: (line) => output.push(line) });
    await channel.send(`${'x'.repeat(MAX_LINE - 1)}S3CRETVALUE\nS3CRETVALUE\n`, end(0));
    await phase;
    // The cut line masked; the whole line as it came (the logger masks it, or the runner).
    expect(output).toEqual([`${'x'.repeat(MAX_LINE - 1)}${CUT_MARK}`, '***', 'S3CRETVALUE']);
  });
});
