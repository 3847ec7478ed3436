import type { Logger } from '../core/logger.js';
import type { UploadSections } from '../remote/scripts.js';
import type { ListedContent } from '../core/content-list.js';
import { type UploadPlan, planUpload } from './diff.js';
import { tarStream } from './tar.js';
import type { UploadSource } from './tree.js';

/**
 * What one host is sent for an upload: the list of unchanged files (in the
 * build script) and the sections its upload step reads, in its order
 * (host/upload.sh). Only the tar holds file bytes, and only of what
 * changed; the rest is lists.
 */
export interface Transfer {
  plan: UploadPlan;
  sections: UploadSections;
  /** Bytes of the stream: both sections (the unchanged list travels in the script). */
  size: number;
  /** The stream, as the pieces to write in order. */
  stream(): Iterable<Buffer> | AsyncIterable<Buffer>;
  /** A piece of stream() the connection has written or copied: its buffer is filled again (tar.ts). */
  taken(piece: Buffer): void;
}

const nulList = (paths: readonly string[]) => Buffer.from(paths.map((path) => `${path}\0`).join(''), 'utf8').toString('base64');

/**
 * The stream for one host, given the content list of its current release
 * (null: send everything), and whether the host has copied that release's
 * files still as uploaded (`previous.files`) with the facts: files are reused
 * from that copy only, so without it everything is sent.
 */
export function prepareTransfer(source: UploadSource, previous: ListedContent | null, from: string, precopied: boolean): Transfer {
  const plan = planUpload(source, from && precopied ? previous : null);
  const { list } = source;
  const tar = tarStream(source, plan.send);
  const sections: UploadSections = {
    unchanged: nulList(plan.unchanged.map((entry) => entry.path)),
    tar: tar.size,
    list: list.length,
    from: plan.unchanged.length > 0 ? from : '',
  };
  return {
    plan,
    sections,
    size: tar.size + list.length,
    stream: () => {
      const chunks = tar.chunks(list);
      return Symbol.asyncIterator in chunks ? coalesce(chunks) : chunks;
    },
    taken: (piece) => tar.reuse(piece),
  };
}

/**
 * Writes of at least this size reach the connection. A tar of small files is
 * mostly 512-byte headers and paddings and a few KB of data each; written one
 * by one, every piece became an SSH packet of its own (with its own MAC and
 * system calls on both sides). ssh2 still cuts a write into packets the
 * server accepts (32 KiB for OpenSSH). Files on this machine come already
 * packed into 256 KiB pieces (tar.ts); an archive's members are gathered here.
 */
const WRITE_SIZE = 1 << 16;

async function* coalesce(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of chunks) {
    if (pendingBytes === 0 && chunk.length >= WRITE_SIZE) {
      yield chunk;
      continue;
    }
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= WRITE_SIZE) {
      yield Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}

/** How often a long transfer reports, and after how long it starts to. */
const PROGRESS_EVERY_MS = 5000;

const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/**
 * The log of one host's transfer: a line at most every 5 s while it lasts
 * (none for a short one), and one line at the end.
 */
export class TransferProgress {
  private readonly started = Date.now();
  private lastReport = this.started;
  sent = 0;

  constructor(
    private readonly logger: Logger,
    private readonly host: string,
    private readonly transfer: Transfer,
  ) {}

  update(sent: number): void {
    this.sent = sent;
    const now = Date.now();
    if (now - this.lastReport < PROGRESS_EVERY_MS) return;
    this.lastReport = now;
    const seconds = (now - this.started) / 1000;
    const rate = sent / seconds;
    const eta = rate > 0 ? Math.ceil((this.transfer.size - sent) / rate) : 0;
    this.logger.info(`${this.host}: upload: ${megabytes(sent)} of ${megabytes(this.transfer.size)} sent, ${megabytes(rate)}/s, about ${eta} s to go`);
  }

  /** The closing line: what the release got, and what crossed the network. */
  finish(): void {
    const seconds = ((Date.now() - this.started) / 1000).toFixed(1);
    this.logger.info(`${this.host}: ${describeTransfer(this.transfer, this.sent)} in ${seconds} s`);
  }
}

/** `N files (M unchanged, copied on the host), X MB sent`. */
export function describeTransfer(transfer: Transfer, sent = transfer.size): string {
  const { plan } = transfer;
  const files = plan.send.filter((entry) => entry.type === 'file').length + plan.unchanged.length;
  return `${files} files (${plan.unchanged.length} unchanged, copied on the host), ${megabytes(sent)} sent`;
}
