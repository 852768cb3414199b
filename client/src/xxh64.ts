/**
 * xxh64 (seed 0 by default) over UTF-8 text, as BigInt: the sampling hash of PROTOCOL.md §2.
 * Written here so the SDK has no runtime dependency; checked against the shared golden vectors.
 */

const M = 0xffffffffffffffffn;
const P1 = 11400714785074694791n;
const P2 = 14029467366897019727n;
const P3 = 1609587929392839161n;
const P4 = 9650029242287828579n;
const P5 = 2870177450012600261n;

const utf8 = new TextEncoder();

function rotl(x: bigint, r: bigint): bigint {
  return ((x << r) | (x >> (64n - r))) & M;
}

function round(acc: bigint, input: bigint): bigint {
  acc = (acc + input * P2) & M;
  return (rotl(acc, 31n) * P1) & M;
}

function merge(acc: bigint, value: bigint): bigint {
  acc ^= round(0n, value);
  return (acc * P1 + P4) & M;
}

/** The xxh64 digest of `data` (a string is hashed as its UTF-8 bytes), in [0, 2^64). */
export function xxh64(data: string | Uint8Array, seed = 0n): bigint {
  const bytes = typeof data === "string" ? utf8.encode(data) : data;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = bytes.length;
  let offset = 0;
  let h: bigint;
  if (length >= 32) {
    let v1 = (seed + P1 + P2) & M;
    let v2 = (seed + P2) & M;
    let v3 = seed & M;
    let v4 = (seed - P1) & M;
    for (; offset + 32 <= length; offset += 32) {
      v1 = round(v1, view.getBigUint64(offset, true));
      v2 = round(v2, view.getBigUint64(offset + 8, true));
      v3 = round(v3, view.getBigUint64(offset + 16, true));
      v4 = round(v4, view.getBigUint64(offset + 24, true));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M;
    h = merge(merge(merge(merge(h, v1), v2), v3), v4);
  } else {
    h = (seed + P5) & M;
  }
  h = (h + BigInt(length)) & M;
  for (; offset + 8 <= length; offset += 8) {
    h ^= round(0n, view.getBigUint64(offset, true));
    h = (rotl(h, 27n) * P1 + P4) & M;
  }
  if (offset + 4 <= length) {
    h ^= (BigInt(view.getUint32(offset, true)) * P1) & M;
    h = (rotl(h, 23n) * P2 + P3) & M;
    offset += 4;
  }
  for (; offset < length; offset++) {
    h ^= (BigInt(bytes[offset] as number) * P5) & M;
    h = (rotl(h, 11n) * P1) & M;
  }
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  h ^= h >> 32n;
  return h;
}
