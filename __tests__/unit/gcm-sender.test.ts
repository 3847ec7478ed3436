/**
 * The lean AES-GCM sender (gcm-sender.ts): what it puts on the wire is read
 * back by ssh2's own AES-GCM reader, packet for packet, with every nonce in
 * its turn; its packets are built in one reused buffer without one packet's
 * bytes showing in the next; and any other cipher is left alone.
 */
import { expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { leanGcmSender } from '../../src/remote/gcm-sender.js';

interface CipherInfo {
  sslName: string;
}
interface Ssh2Cipher {
  allocPacket(payloadLength: number): Buffer;
  encrypt(packet: Buffer): void;
  outSeqno: number;
}
interface Ssh2Decipher {
  decrypt(data: Buffer, at: number, length: number): void;
}
// ssh2's transport crypto, as its Protocol uses it (no native add-on here: the bundle ships none).
const { CIPHER_INFO, createCipher, createDecipher } = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as {
  CIPHER_INFO: Record<string, CipherInfo>;
  createCipher(config: unknown): Ssh2Cipher;
  createDecipher(config: unknown): Ssh2Decipher;
};

/** A sender and ssh2's reader with the same keys; `sent` is the wire, `read` the payloads read back. */
function pair(name: string) {
  const info = CIPHER_INFO[name];
  const key = randomBytes(name.startsWith('aes256') ? 32 : 16);
  const iv = randomBytes(12);
  // Near the end of the counter's low bytes, so a carry happens.
  iv.writeUInt32BE(0xfffffffe, 8);
  const sent: Buffer[] = [];
  const read: Buffer[] = [];
  const cipher = createCipher({ outbound: { onWrite: (data: Buffer) => {
        sent.push(Buffer.from(data));
      }, cipherInfo: info, cipherKey: key, cipherIV: Buffer.from(iv), seqno: 0 } });
  const decipher = createDecipher({ inbound: { onPayload: (payload: Buffer) => {
        // (A value returned would tell ssh2 to stop reading.)
        read.push(Buffer.from(payload));
      }, decipherInfo: info, decipherKey: key, decipherIV: Buffer.from(iv), seqno: 0 } });
  return { cipher, decipher, sent, read };
}

/** Send payloads as ssh2's Protocol does (allocPacket, the payload at 5, encrypt). */
function send(cipher: Ssh2Cipher, payloads: Buffer[]) {
  for (const payload of payloads) {
    const packet = cipher.allocPacket(payload.length);
    packet.set(payload, 5);
    cipher.encrypt(packet);
  }
}

const payloads = [1, 9, 32768 + 9, 100, 32768 + 9, 0, 15, 16, 17, 34000, 5].map((size) => randomBytes(size));

test.each([['aes128-gcm@openssh.com'], ['aes256-gcm@openssh.com']])('%s: ssh2 reads back every packet the lean sender sends', (name) => {
  const { cipher, decipher, sent, read } = pair(name);
  expect(leanGcmSender({ _protocol: { _cipher: cipher } })).toBe(true);
  send(cipher, payloads);
  const wire = Buffer.concat(sent);
  // ssh2 checks each packet's length, padding and tag as it reads them; fed in odd pieces, as from a socket.
  for (let at = 0; at < wire.length; at += 7777) decipher.decrypt(wire, at, Math.min(at + 7777, wire.length));
  expect(read).toEqual(payloads);
  expect(cipher.outSeqno).toBe(payloads.length);
});

test('the padding is random and every packet is a whole number of blocks', () => {
  const { cipher, sent } = pair('aes128-gcm@openssh.com');
  leanGcmSender({ _protocol: { _cipher: cipher } });
  const lengths: number[] = [];
  const padding: Buffer[] = [];
  for (let i = 0; i < 50; i += 1) {
    const packet = cipher.allocPacket(11);
    const length = packet.readUInt32BE(0);
    lengths.push(length);
    padding.push(Buffer.from(packet.subarray(5 + 11)));
    expect(packet[4]).toBe(packet.length - 5 - 11);
    expect(packet[4]).toBeGreaterThanOrEqual(4);
    cipher.encrypt(packet);
  }
  expect(new Set(lengths)).toEqual(new Set([16 * Math.ceil((1 + 11 + 4) / 16)]));
  expect(new Set(padding.map((bytes) => bytes.toString('hex'))).size).toBe(50);
  // Each packet on the wire: the length, the encrypted rest, the tag.
  expect(sent.length).toBe(3 * 50);
});

test('a packet not yet encrypted keeps its bytes while the next one is built', () => {
  const { cipher, decipher, sent, read } = pair('aes128-gcm@openssh.com');
  leanGcmSender({ _protocol: { _cipher: cipher } });
  const first = cipher.allocPacket(3);
  first.set(Buffer.from('one'), 5);
  const second = cipher.allocPacket(3);
  second.set(Buffer.from('two'), 5);
  expect(first.subarray(5, 8).toString()).toBe('one');
  cipher.encrypt(first);
  cipher.encrypt(second);
  const third = cipher.allocPacket(5);
  third.set(Buffer.from('three'), 5);
  cipher.encrypt(third);
  const wire = Buffer.concat(sent);
  decipher.decrypt(wire, 0, wire.length);
  expect(read.map((payload) => payload.toString())).toEqual(['one', 'two', 'three']);
});

test('other ciphers, and objects that are not ssh2 ciphers, are left as they are', () => {
  const info = CIPHER_INFO['aes128-ctr'];
  const ctr = createCipher({ outbound: { onWrite: () => undefined, cipherInfo: info, cipherKey: randomBytes(16), cipherIV: randomBytes(16), seqno: 0, macInfo: { sslName: 'sha256', len: 32, actualLen: 32, isETM: true }, macKey: randomBytes(32) } });
  const allocPacket = ctr.allocPacket;
  expect(leanGcmSender({ _protocol: { _cipher: ctr } })).toBe(false);
  expect(ctr.allocPacket).toBe(allocPacket);
  expect(leanGcmSender(null)).toBe(false);
  expect(leanGcmSender({ _protocol: {} })).toBe(false);
  expect(leanGcmSender({ _protocol: { _cipher: { _encSSLName: 'aes-128-gcm' } } })).toBe(false);
});
