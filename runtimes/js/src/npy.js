"use strict";
// A small reader for the .npy files in a package's samples/ (numpy's format 1.0-3.0): the
// little-endian numeric dtypes numpy writes on every common machine, C order only. Anything else
// is refused with a message rather than misread.

const os = require("node:os");
const { InvalidPackageError, UnsupportedPackageError } = require("./errors");

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"

// numpy descr -> [onnx/edgepack dtype name, TypedArray]. "|" = byte order not applicable.
const DESCRS = {
  "<f4": ["float32", Float32Array],
  "<f8": ["float64", Float64Array],
  "<i8": ["int64", BigInt64Array],
  "<i4": ["int32", Int32Array],
  "<i2": ["int16", Int16Array],
  "|i1": ["int8", Int8Array],
  "|u1": ["uint8", Uint8Array],
  "|b1": ["bool", Uint8Array],
};

/**
 * Parse .npy bytes into `{dtype, shape, data}`; `data` is a TypedArray that owns its bytes
 * (int64 comes back as a BigInt64Array, as onnxruntime wants it).
 */
function readNpy(bytes, name = "array") {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why) => {
    throw new InvalidPackageError(`${name}: not a readable .npy array (${why})`);
  };
  if (os.endianness() !== "LE") {
    // TypedArrays use the machine's byte order; every supported device is little-endian.
    throw new UnsupportedPackageError(".npy reading needs a little-endian machine");
  }
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) fail("bad magic");
  const major = buf[6];
  if (major < 1 || major > 3) fail(`unknown format version ${major}`);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) fail("truncated header");
  const header = buf.subarray(start, start + headerLen).toString(major === 3 ? "utf8" : "latin1");

  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) fail(`unparsable header ${header.trim()}`);
  const kind = DESCRS[descr[1].replace(/^=/, "<")];
  if (!kind) fail(`dtype ${descr[1]} is not supported (supported: ${Object.keys(DESCRS)})`);
  if (fortran[1] === "True") fail("Fortran-order arrays are not supported");
  const dims = shape[1]
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "")
    .map(Number);
  if (!dims.every((d) => Number.isInteger(d) && d >= 0)) fail(`bad shape (${shape[1]})`);

  const [dtype, TypedArray] = kind;
  const count = dims.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const byteLength = count * TypedArray.BYTES_PER_ELEMENT;
  if (buf.length - dataStart !== byteLength) {
    fail(`expected ${byteLength} data bytes for shape (${dims}), got ${buf.length - dataStart}`);
  }
  // Copy into a fresh, aligned buffer: the data offset need not be a multiple of the item size.
  const data = new TypedArray(count);
  Buffer.from(data.buffer).set(buf.subarray(dataStart));
  return { dtype, shape: dims, data };
}

module.exports = { readNpy };
