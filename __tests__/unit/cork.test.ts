/**
 * The SSH connection's socket gathers the packets written in one tick into one
 * writev: a real TCP connection on loopback, the socket's own write paths counted.
 */
import { expect, test } from '@jest/globals';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { corkPerTick } from '../../src/remote/ssh-transport.js';

test('writes made in one tick leave in one writev, in order, and backpressure still shows', async () => {
  let received = '';
  const server = createServer((peer) => peer.on('data', (chunk) => (received += chunk.toString('utf8'))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => sock.once('connect', resolve));
  const internals = sock as Socket & { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };
  const calls: string[] = [];
  const write = internals._write.bind(sock);
  const writev = internals._writev.bind(sock);
  internals._write = (...args: unknown[]) => {
    calls.push('write');
    write(...args);
  };
  internals._writev = (chunks: unknown, ...rest: unknown[]) => {
    calls.push(`writev ${(chunks as unknown[]).length}`);
    writev(chunks, ...rest);
  };
  corkPerTick(sock);
  expect(sock.write('one,')).toBe(true);
  sock.write('two,');
  sock.write('three');
  await new Promise((resolve) => setImmediate(resolve));
  // A write larger than the high-water mark still says so.
  expect(sock.write(Buffer.alloc(sock.writableHighWaterMark + 1, 'x'))).toBe(false);
  await new Promise((resolve) => sock.once('drain', resolve));
  await new Promise<void>((resolve) => sock.end(resolve));
  await new Promise((resolve) => setTimeout(resolve, 50));
  server.close();
  expect(calls[0]).toBe('writev 3');
  expect(received.startsWith('one,two,three')).toBe(true);
  expect(received.length).toBe('one,two,three'.length + sock.writableHighWaterMark + 1);
});
