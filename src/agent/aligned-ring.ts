// The buffers a copy's chunks go through, aligned for O_DIRECT.
//
// O_DIRECT needs buffers aligned to the device's logical block size (up to 4096), which Buffer does not
// promise. A WebAssembly memory is allocated in whole pages, page-aligned; with chunkBytes a multiple of
// 4096, every slot is too. (Should one ever not be, the direct read or write fails with EINVAL, and its
// caller goes through the page cache instead.)

const WASM_PAGE_BYTES = 64 * 1024;

// (@types/node types WebAssembly's namespace but not its global value, which comes with lib.dom.)
const { Memory } = (
  globalThis as unknown as { WebAssembly: { Memory: new (size: { initial: number }) => { buffer: ArrayBuffer } } }
).WebAssembly;

/** `ringSize` buffers of `chunkBytes` each, back to back in one page-aligned block of memory. */
export function allocAlignedRing(ringSize: number, chunkBytes: number): Buffer[] {
  const memory = new Memory({ initial: Math.ceil((ringSize * chunkBytes) / WASM_PAGE_BYTES) });
  return Array.from({ length: ringSize }, (_, i) => Buffer.from(memory.buffer, i * chunkBytes, chunkBytes));
}
