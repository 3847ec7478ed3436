/** What the session tests share: a run tag, and one phase started on a fake channel. */
import { type ControlLine, type PhaseResult, RemoteSession } from '../../src/remote/session.js';
import { FakeChannel, fakeTransport } from './fake-channel.js';

export const TAG = 'tagflip-0123456789abcdef01234567';
export const OTHER_TAG = 'tagflip-ffffffffffffffffffffffff';

interface Recorded {
  events: string[];
  output: string[];
  control: ControlLine[];
}

/** Open a session on a fake channel and start one phase that records what it sees. */
export async function startPhase(script = 'true'): Promise<{ channel: FakeChannel; session: RemoteSession; phase: Promise<PhaseResult>; seen: Recorded; stderr: string[] }> {
  const channel = new FakeChannel();
  const stderr: string[] = [];
  const session = await RemoteSession.open(fakeTransport(channel), TAG, (line) => stderr.push(line));
  const seen: Recorded = { events: [], output: [], control: [] };
  const phase = session.run(script, {
    onOutput: (line) => {
      seen.output.push(line);
      seen.events.push(`out:${line}`);
    },
    onControl: (line) => {
      seen.control.push(line);
      seen.events.push(`ctl:${line.kind}`);
    },
  });
  return { channel, session, phase, seen, stderr };
}

export const end = (status = 0, tag = TAG) => `\n${tag} end ${status}\n`;
