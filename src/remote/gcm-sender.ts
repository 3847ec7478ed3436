import { createCipheriv, randomFillSync } from 'node:crypto';

/**
 * ssh2's AES-GCM sender as it runs without its native add-on (the bundle
 * ships none: scripts/clean-dist.js), made to allocate one buffer per packet
 * instead of two. That sender builds every packet in a fresh buffer, which
 * only lives until the packet is encrypted (OpenSSL's output is another
 * buffer), and asks the CSPRNG for each packet's padding on its own. An
 * upload sends a packet per 32 KiB (the most sshd takes on a session channel),
 * and the buffers, 420 MB of them for 211 MB, made V8 run a full garbage
 * collection every 60 MB or so (external memory): about a quarter of the
 * runner's CPU on loopback. Here the plaintext is built in one buffer reused
 * for every packet that is encrypted as soon as it is built (all of them but
 * those ssh2 holds back during a key re-exchange), and the padding comes from
 * a pool of random bytes filled 4 KiB at a time, each byte used once.
 *
 * The bytes on the wire are what ssh2 would send: the same cipher, key,
 * nonce sequence (RFC 5647: the invocation counter, the IV's last 8 bytes,
 * incremented per packet) and length, padding rule and tag; only the random
 * padding bytes differ, as they do from one run to the next.
 */
interface GcmSender {
  _encSSLName: string;
  _encKey: Buffer;
  _encIV: Buffer;
  _dead: boolean;
  _onWrite(data: Buffer): void;
  outSeqno: number;
  allocPacket(payloadLength: number): Buffer;
  encrypt(packet: Buffer): void;
  /** The buffer packets are built in, and whether a packet built there waits to be encrypted. */
  tagflipScratch?: Buffer;
  tagflipTaken?: boolean;
}

const LEAN = Symbol('tagflip: lean AES-GCM sender');
const BLOCK = 16;
const TAG = 16;
/** The largest packet kept for reuse: 32 KiB of data and the headers around it (larger ones get a buffer each). */
const SCRATCH = 32768 + 64;
const POOL = 4096;

let pool = Buffer.alloc(0);
let poolAt = 0;

/** `length` random bytes into `packet` at `at`, from the pool (refilled from the CSPRNG when it runs low). */
function randomPadding(packet: Buffer, at: number, length: number): void {
  if (poolAt + length > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL));
    poolAt = 0;
  }
  pool.copy(packet, at, poolAt, poolAt + length);
  // Used bytes are never handed out again.
  poolAt += length;
}

/** The GCM invocation counter (the IV's last 8 bytes, big-endian) plus one, as ssh2's ivIncrement. */
function nextNonce(iv: Buffer): void {
  for (let i = 11; i >= 4; i -= 1) {
    iv[i] = (iv[i] + 1) & 0xff;
    if (iv[i] !== 0) return;
  }
}

function isGcmSender(cipher: unknown): cipher is GcmSender {
  const c = cipher as Partial<GcmSender> | null;
  return (
    !!c &&
    typeof c._encSSLName === 'string' &&
    /^aes-(128|256)-gcm$/.test(c._encSSLName) &&
    Buffer.isBuffer(c._encKey) &&
    Buffer.isBuffer(c._encIV) &&
    c._encIV.length === 12 &&
    typeof c._onWrite === 'function' &&
    typeof c.outSeqno === 'number' &&
    typeof c.allocPacket === 'function' &&
    typeof c.encrypt === 'function' &&
    c.allocPacket.length === 1 &&
    c.encrypt.length === 1
  );
}

/**
 * Make the connection's outbound cipher (and every later one of its class:
 * a key re-exchange makes a new one) the lean sender above, when it is
 * ssh2's AES-GCM without the add-on; any other cipher or shape of ssh2 is
 * left as it is.
 */
export function leanGcmSender(connection: unknown): boolean {
  const cipher = (connection as { _protocol?: { _cipher?: unknown } } | null)?._protocol?._cipher;
  if (!isGcmSender(cipher)) return false;
  const prototype = Object.getPrototypeOf(cipher) as GcmSender & { [LEAN]?: true };
  if (prototype[LEAN]) return true;
  prototype[LEAN] = true;

  prototype.allocPacket = function (this: GcmSender, payloadLength: number): Buffer {
    let length = 4 + 1 + payloadLength;
    let padding = BLOCK - ((length - 4) & (BLOCK - 1));
    if (padding < 4) padding += BLOCK;
    length += padding;
    let packet: Buffer;
    if (!this.tagflipTaken && length <= SCRATCH) {
      this.tagflipScratch ??= Buffer.allocUnsafe(SCRATCH);
      packet = this.tagflipScratch.subarray(0, length);
      this.tagflipTaken = true;
    } else {
      packet = Buffer.allocUnsafe(length);
    }
    packet.writeUInt32BE(length - 4, 0);
    packet[4] = padding;
    randomPadding(packet, 5 + payloadLength, padding);
    return packet;
  };

  prototype.encrypt = function (this: GcmSender, packet: Buffer): void {
    if (this._dead) return;
    const cipher = createCipheriv(this._encSSLName as 'aes-128-gcm', this._encKey, this._encIV, { authTagLength: TAG });
    cipher.setAutoPadding(false);
    // The length goes out as it is (it is the additional data); its copy, not
    // the packet's bytes, since the packet's buffer is built over by the next one.
    const length = Buffer.from(packet.subarray(0, 4));
    cipher.setAAD(length);
    this._onWrite(length);
    this._onWrite(cipher.update(packet.subarray(4)));
    const final = cipher.final();
    if (final.length > 0) this._onWrite(final);
    this._onWrite(cipher.getAuthTag());
    nextNonce(this._encIV);
    this.outSeqno = (this.outSeqno + 1) >>> 0;
    // Read whole: the next packet may be built over it.
    if (this.tagflipTaken && packet.buffer === this.tagflipScratch?.buffer && packet.byteOffset === this.tagflipScratch.byteOffset) this.tagflipTaken = false;
  };
  return true;
}
