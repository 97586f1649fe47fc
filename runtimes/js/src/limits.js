"use strict";
// The caps on what a package or a user's file can make the runtime read (docs/package-format.md,
// "What a reader refuses" and "The memory budget"; docs/guarantees.md). A package comes from
// outside the device: whatever its headers or manifest claim, the runtime reads at most these
// many bytes and nesting levels, so a hostile package costs a bounded amount of memory and time
// before it is refused. The same numbers as the Python and C++ runtimes.

const os = require("node:os");

const MAX_THREADS_PER_CORE = 4;
const cores = () => (os.availableParallelism ? os.availableParallelism() : os.cpus().length) || 1;

module.exports = {
  // manifest.json is a few KB (about 15 KB for digits); a bigger one is refused before it is read.
  MAX_MANIFEST_BYTES: 16 * 2 ** 20,
  // Any one listed file: a model is a single protobuf, which cannot exceed 2 GiB. Every file must
  // also be exactly its manifest size, so nothing is ever inflated or read past that size.
  MAX_FILE_BYTES: 2 * 2 ** 30,
  // [ and { nesting in any JSON the runtime parses (a real manifest nests 7 deep); checked on the
  // text before JSON.parse, so nothing later walks a document thousands of levels deep.
  MAX_JSON_DEPTH: 64,
  // manifest.sig is a raw 64-byte ed25519 signature; a bigger file is never read whole.
  MAX_SIGNATURE_BYTES: 1024,
  // The memory budget: the files a reader keeps besides the model (samples, sample images,
  // tokenizer, recorded generation) hold at most this many bytes together, summed from their
  // listed sizes before any is read.
  MAX_KEPT_BYTES: 64 * 2 ** 20,
  // A zip member over 1 MiB may inflate to at most 64 times its compressed size.
  MAX_INFLATE_RATIO: 64,
  INFLATE_RATIO_FLOOR: 2 ** 20,
  // An .npy header (numpy's own max_header_size): read and checked before the array's data.
  MAX_NPY_HEADER_BYTES: 10000,
  // Decoded pixels, read from an image's header before it is decoded: a user's image (Pillow's
  // decompression-bomb limit) and a package's sample images.
  MAX_IMAGE_PIXELS: 178956970,
  MAX_SAMPLE_IMAGE_PIXELS: 2 ** 24,
  // Files a user names: regular files only, refused from their size when over these caps.
  MAX_INPUT_BYTES: 2 * 2 ** 30,
  MAX_IMAGE_FILE_BYTES: 256 * 2 ** 20,
  MAX_PUBLIC_KEY_BYTES: 2 ** 16,
  // Tokens one generation may add (a language model's context ends it sooner).
  MAX_NEW_TOKENS: 2 ** 16,
  // onnxruntime's intra-op threads: at most this many per core of the machine.
  MAX_THREADS_PER_CORE,
  maxThreads: () => MAX_THREADS_PER_CORE * cores(),
};
