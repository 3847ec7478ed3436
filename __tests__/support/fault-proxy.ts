/**
 * A TCP proxy on 127.0.0.1 between tagflip and one sshd that can break the
 * path the ways a network does. The SSH stream is encrypted, so the proxy
 * knows only bytes: it counts them per direction, and can act at an exact
 * byte offset (`at`); faults tied to a phase are started by whoever can read
 * the phase (a transport wrapper in the test process, or the host's files).
 *
 * A real network cut is silent first, then ends in resets: TCP retransmits
 * unacknowledged data into a void until one side gives up. Here a stopped
 * direction is paused, not drained, so its sender's socket buffers fill as
 * they would against a dead link, and `reset()` ends the connections with a
 * RST on both sides, as the eventual timeout or a middlebox would.
 */
import * as net from 'node:net';

/** up: client to server (tagflip's scripts); down: server to client (the host's answers). */
export type Direction = 'up' | 'down';

interface Pair {
  client: net.Socket;
  server: net.Socket;
}

export class FaultProxy {
  /** Bytes passed on so far, per direction, over every connection. */
  readonly passed: Record<Direction, number> = { up: 0, down: 0 };
  private readonly stopped = new Set<Direction>();
  private readonly pairs: Pair[] = [];
  private readonly marks: { direction: Direction; offset: number; action: () => void }[] = [];

  /** The loopback port it listens on. */
  port = 0;

  private constructor(private readonly server: net.Server) {}

  /** Listen on a free loopback port and forward every connection to 127.0.0.1:`targetPort`. */
  static async start(targetPort: number): Promise<FaultProxy> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    const proxy = new FaultProxy(server);
    server.on('connection', (client) => proxy.accept(client, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.port = (server.address() as net.AddressInfo).port;
    return proxy;
  }

  /**
   * Run `action` once exactly `offset` bytes have passed in `direction`: the
   * bytes up to the offset are passed on, the rest of that chunk is held back
   * until the direction runs again (an action that stops it keeps them).
   */
  at(direction: Direction, offset: number, action: () => void): void {
    this.marks.push({ direction, offset, action });
  }

  /** Stop passing bytes in `direction`; the connections stay open. */
  stop(direction: Direction): void {
    this.stopped.add(direction);
    for (const pair of this.pairs) (direction === 'up' ? pair.client : pair.server).pause();
  }

  /** Both directions silent, both connections open: a path that went quiet. */
  freeze(): void {
    this.stop('up');
    this.stop('down');
  }

  /** End every connection with a RST on both sides (what a cut path comes to). */
  reset(): void {
    for (const { client, server } of this.pairs) {
      for (const socket of [client, server]) if (!socket.destroyed) socket.resetAndDestroy();
    }
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, targetPort: number): void {
    const server = net.connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true, noDelay: true });
    const pair = { client, server };
    this.pairs.push(pair);
    // A reset of one side is passed on as a reset of the other, as a cut would.
    const dropBoth = () => this.dropPair(pair);
    client.on('error', dropBoth);
    server.on('error', dropBoth);
    client.pause();
    server.once('connect', () => {
      this.forward(client, server, 'up');
      this.forward(server, client, 'down');
    });
  }

  private dropPair({ client, server }: Pair): void {
    for (const socket of [client, server]) if (!socket.destroyed) socket.resetAndDestroy();
  }

  private forward(from: net.Socket, to: net.Socket, direction: Direction): void {
    from.on('data', (chunk: Buffer) => {
      let rest = chunk;
      while (rest.length > 0) {
        const mark = this.nextMark(direction);
        const room = mark ? mark.offset - this.passed[direction] : rest.length;
        const part = rest.subarray(0, Math.max(0, Math.min(room, rest.length)));
        rest = rest.subarray(part.length);
        this.passed[direction] += part.length;
        if (part.length > 0 && !to.destroyed && !to.write(part)) from.pause();
        if (mark && this.passed[direction] >= mark.offset) {
          this.marks.splice(this.marks.indexOf(mark), 1);
          mark.action();
          if (this.stopped.has(direction)) {
            // Held back, as the network would hold what it had not delivered: it never goes.
            if (rest.length > 0) from.pause();
            return;
          }
        }
      }
    });
    to.on('drain', () => {
      if (!this.stopped.has(direction)) from.resume();
    });
    from.on('end', () => {
      if (!this.stopped.has(direction) && !to.destroyed) to.end();
    });
    if (!this.stopped.has(direction)) from.resume();
  }

  private nextMark(direction: Direction) {
    return this.marks.filter((mark) => mark.direction === direction).sort((a, b) => a.offset - b.offset)[0];
  }
}
