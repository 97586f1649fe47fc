"use strict";
// The caps on what a package can make the runtime read (docs/package-format.md, "What a
// reader refuses"). A package comes from outside the device: whatever its headers or manifest claim, the
// runtime reads at most these many bytes and nesting levels, so a hostile package costs a bounded
// amount of memory and time before it is refused. The same numbers as the Python and C++ runtimes.

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
};
