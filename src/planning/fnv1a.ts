// FNV-1a, 32 bit (http://www.isthe.com/chongo/tech/comp/fnv/). Small, fast and stable across
// platforms, which is all a name suffix or a seed needs; not a cryptographic hash. Written out here
// because src/planning/ may not import node:crypto.

const OFFSET_BASIS = 0x811c9dc5;
const PRIME = 0x01000193;

/** FNV-1a over the UTF-8 bytes of `text`, as an unsigned 32-bit integer. */
export function fnv1a32(text: string): number {
  let hash = OFFSET_BASIS;
  for (const byte of utf8Bytes(text)) {
    hash = Math.imul(hash ^ byte, PRIME) >>> 0;
  }
  return hash;
}

/** fnv1a32 as 8 lower-case hex digits, zero-padded so the length never varies. */
export function fnv1a32Hex(text: string): string {
  return fnv1a32(text).toString(16).padStart(8, "0");
}

// Hashing UTF-8 rather than UTF-16 code units keeps the results equal to every other FNV-1a
// implementation (and its published test vectors) for any input, not just ASCII.
function* utf8Bytes(text: string): Generator<number> {
  for (const char of text) {
    const cp = char.codePointAt(0) ?? 0;
    if (cp < 0x80) {
      yield cp;
    } else if (cp < 0x800) {
      yield 0xc0 | (cp >> 6);
      yield 0x80 | (cp & 0x3f);
    } else if (cp < 0x10000) {
      yield 0xe0 | (cp >> 12);
      yield 0x80 | ((cp >> 6) & 0x3f);
      yield 0x80 | (cp & 0x3f);
    } else {
      yield 0xf0 | (cp >> 18);
      yield 0x80 | ((cp >> 12) & 0x3f);
      yield 0x80 | ((cp >> 6) & 0x3f);
      yield 0x80 | (cp & 0x3f);
    }
  }
}
