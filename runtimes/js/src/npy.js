"use strict";
// The .npy reader (numpy's format 1.0-3.0) of every array the runtime takes from a package or a
// user, header first, as the Python and C++ runtimes read it: the header (at most
// MAX_NPY_HEADER_BYTES) is parsed and checked before a byte of data is touched: numbers and bools
// only, little-endian, C order, no negative dim, and exactly as many data bytes as the shape says.

const os = require("node:os");
const { InvalidPackageError, UnsupportedPackageError } = require("./errors");
const { MAX_NPY_HEADER_BYTES } = require("./limits");

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"
// The most bytes before an .npy's data: magic (6), version (2), length (4), header.
const HEAD_BYTES = 12 + MAX_NPY_HEADER_BYTES;

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
const ITEM_SIZES = { b: [1], i: [1, 2, 4, 8], u: [1, 2, 4, 8], f: [2, 4, 8] };
const NOT_NUMBERS = {
  M: "datetime",
  m: "timedelta",
  U: "string",
  S: "bytes",
  O: "object",
  c: "complex",
};

/** Why an array of this descr is not an array of numbers (null when it is). */
function dtypeRefusal(descr) {
  const kind = descr.replace(/^[<>|=]/, "")[0];
  const size = Number(descr.replace(/^[<>|=]./, ""));
  if (ITEM_SIZES[kind]?.includes(size)) return null;
  const what = NOT_NUMBERS[kind] ?? "structured or void";
  return `${what} arrays (${descr}) are not numbers: pass bool, int or float arrays`;
}

/**
 * Parse and check the header at the start of `head` (its first HEAD_BYTES bytes, or the file):
 * `{descr, dtype, shape, offset, dataBytes}` (dtype and itemSize null for a dtype this reader
 * cannot hold). Throws `Err` (InvalidPackageError unless said) naming `name`.
 */
function parseNpyHeader(head, name = "array", Err = InvalidPackageError) {
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const fail = (why) => {
    throw new Err(`${name}: not a readable .npy array (${why})`);
  };
  if (buf.length < 8 || !buf.subarray(0, 6).equals(MAGIC)) fail("bad magic: not an .npy file");
  const [major, minor] = [buf[6], buf[7]];
  if (major < 1 || major > 3 || minor !== 0) fail(`unknown format version ${major}.${minor}`);
  const start = major === 1 ? 10 : 12;
  if (buf.length < start) fail("truncated header");
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  if (headerLen > MAX_NPY_HEADER_BYTES) {
    fail(`a ${headerLen}-byte header, over the ${MAX_NPY_HEADER_BYTES}-byte cap`);
  }
  if (start + headerLen > buf.length) fail("truncated header");
  const header = buf.subarray(start, start + headerLen).toString(major === 3 ? "utf8" : "latin1");

  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) fail(`unparsable header: ${header.trim().slice(0, 200)}`);
  const refusal = dtypeRefusal(descr[1]);
  if (refusal !== null) throw new Err(`${name}: ${refusal}`);
  if (descr[1].startsWith(">")) fail("big-endian arrays are not supported");
  if (fortran[1] === "True") fail("Fortran-order arrays are not supported (save a C-order array)");
  const dims = shape[1]
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "");
  if (dims.some((d) => /^-\d+$/.test(d))) fail(`negative dimension in shape (${shape[1]})`);
  if (!dims.every((d) => /^\d+$/.test(d))) fail(`bad shape (${shape[1]})`);
  const numbers = dims.map(Number);
  const itemSize = Number(descr[1].replace(/^[<>|=]./, ""));
  const count = numbers.reduce((a, b) => a * b, 1); // a double: past 2^53 it only gets bigger
  const kind = DESCRS[descr[1].replace(/^=/, "<")];
  return {
    descr: descr[1],
    dtype: kind ? kind[0] : null,
    shape: numbers,
    offset: start + headerLen,
    dataBytes: count * itemSize,
  };
}

/** The data after the header must be exactly what the shape says: no more, no less. */
function checkNpySize(header, size, name = "array", Err = InvalidPackageError) {
  const have = size - header.offset;
  if (have !== header.dataBytes) {
    throw new Err(
      `${name}: not a readable .npy array (shape (${header.shape}) of ${header.descr} needs ` +
        `${header.dataBytes} data bytes, the file holds ${have})`,
    );
  }
}

/**
 * Parse .npy bytes into `{dtype, shape, data}`; `data` is a TypedArray that owns its bytes
 * (int64 comes back as a BigInt64Array, as onnxruntime wants it). Throws `Err` naming `name`.
 */
function readNpy(bytes, name = "array", Err = InvalidPackageError) {
  if (os.endianness() !== "LE") {
    // TypedArrays use the machine's byte order; every supported device is little-endian.
    throw new UnsupportedPackageError(".npy reading needs a little-endian machine");
  }
  const header = parseNpyHeader(bytes.subarray(0, HEAD_BYTES), name, Err);
  checkNpySize(header, bytes.byteLength, name, Err);
  const kind = DESCRS[header.descr.replace(/^=/, "<")];
  if (!kind) {
    throw new UnsupportedPackageError(
      `${name}: dtype ${header.descr} is not supported by the JS runtime (supported: ` +
        `${Object.keys(DESCRS)})`,
    );
  }
  const [dtype, TypedArray] = kind;
  // Copy into a fresh, aligned buffer: the data offset need not be a multiple of the item size.
  const data = new TypedArray(header.dataBytes / TypedArray.BYTES_PER_ELEMENT);
  const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  Buffer.from(data.buffer).set(src.subarray(header.offset));
  return { dtype, shape: header.shape, data };
}

module.exports = { HEAD_BYTES, checkNpySize, parseNpyHeader, readNpy };
