"use strict";
// Read the files of a package, whether it is a `.edgepack` zip or a folder with the same tree.
//
// Only regular files are ever read. Symlinks (a zip member whose mode says S_IFLNK, or a link
// anywhere in a folder), FIFOs, sockets and devices are refused when the package is opened, and
// a folder's files are opened with O_NOFOLLOW | O_NONBLOCK under parents checked to be real
// folders, so a read can neither leave the package root nor block. Every read is bounded by the
// size the caller expects (the manifest's): a zip bomb or a file that grows is refused after at
// most that many bytes. Nothing is extracted to disk: members are streamed out of the zip (yauzl).

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const yauzl = require("yauzl");
const { EdgepackRuntimeError, IntegrityError, InvalidPackageError } = require("./errors");
const { INFLATE_RATIO_FLOOR, MAX_INFLATE_RATIO } = require("./limits");

const MANIFEST = "manifest.json";
const CHUNK = 1 << 20;
const ONLY_REGULAR = "a package holds only regular files: copy the file itself in";
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const { O_RDONLY, O_NOFOLLOW = 0, O_NONBLOCK = 0 } = fs.constants;

/** Return `name` if it is a plain relative posix path, else throw InvalidPackageError. */
function checkMemberName(name, where) {
  const parts = name.replace(/\/$/, "").split("/");
  const bad =
    !name ||
    name.includes("\\") ||
    name.startsWith("/") ||
    parts[0].includes(":") || // "C:/..." is absolute on Windows even without a leading slash
    parts.some((p) => p === "" || p === "." || p === ".."); // "a//b": one file, one spelling
  if (bad) {
    throw new InvalidPackageError(
      `${where}: unsafe file name ${JSON.stringify(name)} (must be a relative path)`,
    );
  }
  return name;
}

function sizeMismatch(name, expected, got) {
  return new IntegrityError(
    `${name}: size mismatch (expected ${expected} bytes, got ${got}): ` +
      "the package was modified after it was built",
  );
}

/**
 * The most compressed bytes a `size`-byte member can take: deflate, bzip2 and lzma never grow
 * data by more than a fraction of a percent, so a member far above this has a header that
 * understates what it inflates to (a zip bomb's trick). The same rule as the Python runtime.
 */
function maxCompressedSize(size) {
  return size + Math.floor(size / 8) + 1024;
}

/**
 * A member that inflates more than MAX_INFLATE_RATIO times (above INFLATE_RATIO_FLOOR): refused
 * from its header, before a byte is inflated. The same rule as the Python runtime.
 */
function inflateRatioError(name, size, compressed) {
  if (size <= INFLATE_RATIO_FLOOR || size <= MAX_INFLATE_RATIO * compressed) return null;
  return new IntegrityError(
    `${name}: ${compressed} compressed bytes inflate to ${size}, more than ` +
      `${MAX_INFLATE_RATIO} times: a zip bomb, refused by the memory budget (edgepack stores ` +
      "such a member uncompressed)",
  );
}

// CRC-32 (zlib's polynomial), for Node versions without zlib.crc32 (before 20.15).
let crcTable = null;
function crc32(chunk, crc = 0) {
  if (zlib.crc32) return zlib.crc32(chunk, crc);
  if (crcTable === null) {
    crcTable = new Int32Array(256).map((_, n) => {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      return c;
    });
  }
  let c = ~crc;
  for (let i = 0; i < chunk.length; i++) c = crcTable[(c ^ chunk[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * sha256 of exactly `size` bytes of a stream, plus the bytes when `keep` (one pass, read once,
 * into one buffer of the listed size: nothing is held twice) and the CRC-32 when `crc`.
 * Throws as soon as the stream holds more than `size` bytes, or at its end if fewer.
 */
async function digestStream(name, stream, size, keep, crc = false) {
  const sha = crypto.createHash("sha256");
  const bytes = keep ? Buffer.allocUnsafe(size) : null;
  let got = 0;
  let sum = 0;
  for await (const chunk of stream) {
    if (got + chunk.length > size) throw sizeMismatch(name, size, got + chunk.length);
    sha.update(chunk);
    if (crc) sum = crc32(chunk, sum);
    if (keep) chunk.copy(bytes, got);
    got += chunk.length;
  }
  if (got !== size) throw sizeMismatch(name, size, got);
  return { sha256: sha.digest("hex"), bytes, crc32: sum };
}

/** The first `n` bytes of a stream (fewer if it is shorter); the rest is never read. */
async function streamHead(stream, n) {
  const parts = [];
  let got = 0;
  for await (const chunk of stream) {
    parts.push(chunk.subarray(0, n - got));
    got += Math.min(chunk.length, n - got);
    if (got >= n) break; // leaving the loop destroys the stream: nothing more is inflated
  }
  stream.destroy();
  return Buffer.concat(parts);
}

/** "file" or "dir" for a zip entry; InvalidPackageError for a symlink or other special file. */
function zipEntryKind(entry, where) {
  const kind = (entry.externalFileAttributes >>> 16) & S_IFMT; // unix mode; 0 if none recorded
  const name = JSON.stringify(entry.fileName);
  if (kind === S_IFLNK) {
    throw new InvalidPackageError(`${where}: zip member ${name} is a symlink; ${ONLY_REGULAR}`);
  }
  if (entry.fileName.endsWith("/") && (kind === 0 || kind === S_IFDIR)) return "dir";
  if (kind !== 0 && kind !== S_IFREG) {
    throw new InvalidPackageError(
      `${where}: zip member ${name} is not a regular file (mode ${kind.toString(8)}); ` +
        ONLY_REGULAR,
    );
  }
  return "file";
}

class ZipSource {
  static async open(file) {
    let zip;
    try {
      // strictFileNames: a backslash name is an error, not silently rewritten to a slash.
      zip = await yauzl.openPromise(file, { autoClose: false, strictFileNames: true });
    } catch (err) {
      throw new InvalidPackageError(`${file}: not a readable zip (${err.message})`);
    }
    const entries = new Map();
    try {
      for await (const entry of zip.eachEntry()) ZipSource._add(entries, entry, file);
    } catch (err) {
      zip.close();
      if (err instanceof EdgepackRuntimeError) throw err;
      throw new InvalidPackageError(`${file}: not a readable zip (${err.message})`);
    }
    return new ZipSource(file, zip, entries);
  }

  static _add(entries, entry, file) {
    const name = checkMemberName(entry.fileName, file);
    if (zipEntryKind(entry, file) === "dir") return;
    if (entries.has(name)) {
      // Two members with one name: which one a reader sees is up to the reader.
      throw new InvalidPackageError(`${file}: duplicate zip member ${JSON.stringify(name)}`);
    }
    if (entry.isEncrypted()) {
      throw new InvalidPackageError(`${file}: zip member ${JSON.stringify(name)} is encrypted`);
    }
    if (entry.compressedSize > maxCompressedSize(entry.uncompressedSize)) {
      throw new IntegrityError(
        `${name}: the zip header says ${entry.uncompressedSize} bytes but the member holds ` +
          `${entry.compressedSize} compressed bytes: the zip was altered`,
      );
    }
    entries.set(name, entry);
  }

  constructor(label, zip, entries) {
    this.label = label;
    this._zip = zip;
    this._entries = entries;
  }

  names() {
    return new Set(this._entries.keys());
  }

  /** The uncompressed size from the central directory: known before a byte is inflated. */
  size(name) {
    return this._entries.get(name).uncompressedSize;
  }

  /** The bytes the member takes in the zip (compressed). */
  storedSize(name) {
    return this._entries.get(name).compressedSize;
  }

  /** The first `n` bytes of a member, inflating no more than that (e.g. an .npy header). */
  async head(name, n) {
    try {
      return await streamHead(await this._zip.openReadStreamPromise(this._entries.get(name)), n);
    } catch (err) {
      throw new IntegrityError(`${name}: cannot read zip member (${err.message})`);
    }
  }

  /**
   * Exactly `size` bytes of a member: hashed, kept when `keep`, and its CRC-32 checked against
   * the zip's (the zip contract: every reader checks it, as Python's zipfile does).
   */
  async digest(name, size, keep) {
    if (this.size(name) !== size) throw sizeMismatch(name, size, this.size(name));
    const entry = this._entries.get(name);
    let result;
    try {
      // yauzl also checks that the inflated size is the declared one (validateEntrySizes).
      const stream = await this._zip.openReadStreamPromise(entry);
      result = await digestStream(name, stream, size, keep, true);
    } catch (err) {
      if (err instanceof EdgepackRuntimeError) throw err;
      // A bad stream or an encrypted member: the file is not the one that was packaged.
      throw new IntegrityError(`${name}: cannot read zip member (${err.message})`);
    }
    if (result.crc32 !== entry.crc32 >>> 0) {
      throw new IntegrityError(
        `${name}: cannot read zip member (Bad CRC-32: the zip says ` +
          `${(entry.crc32 >>> 0).toString(16)}, its data has ${result.crc32.toString(16)})`,
      );
    }
    return result;
  }

  close() {
    this._zip.close();
  }
}

function notRegular(name, stat) {
  if (stat.isSymbolicLink())
    return new InvalidPackageError(`${name}: is a symlink; ${ONLY_REGULAR}`);
  return new InvalidPackageError(
    `${name}: not a regular file (a FIFO, socket or device); ${ONLY_REGULAR}`,
  );
}

/** Up to `limit` bytes of an open file, in fresh chunks (a kept chunk must not be reused). */
async function* readChunks(handle, limit) {
  for (let left = limit; left > 0;) {
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK, left));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
    if (bytesRead === 0) return;
    left -= bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

class FolderSource {
  constructor(root) {
    this.label = root;
    this._root = root;
    this._sizes = new Map();
    const pending = [""]; // an explicit stack: a folder nested thousands deep cannot recurse us
    while (pending.length > 0) {
      const rel = pending.pop();
      let entries;
      try {
        entries = fs.readdirSync(path.join(root, rel));
      } catch (err) {
        throw new InvalidPackageError(`${root}: cannot list ${rel || "."} (${err.code ?? err})`);
      }
      for (const base of entries) {
        const name = rel ? `${rel}/${base}` : base;
        const stat = this._lstat(name);
        if (stat.isDirectory()) pending.push(name);
        else if (stat.isFile()) this._sizes.set(name, stat.size);
        else throw notRegular(name, stat);
      }
    }
  }

  _lstat(name) {
    try {
      return fs.lstatSync(path.join(this._root, name));
    } catch (err) {
      throw new IntegrityError(`${name}: cannot read (${err.code ?? err.message})`);
    }
  }

  names() {
    return new Set(this._sizes.keys());
  }

  size(name) {
    return this._sizes.get(name);
  }

  storedSize(name) {
    return this.size(name);
  }

  /** The first `n` bytes of a file (e.g. an .npy header), read like digest reads it. */
  async head(name, n) {
    return this._read(name, this.size(name), async (handle) => {
      const parts = [];
      for await (const chunk of readChunks(handle, n)) parts.push(chunk);
      return Buffer.concat(parts);
    });
  }

  /** Exactly `size` bytes of a file, never through a link, never blocking on a FIFO. */
  async digest(name, size, keep) {
    if (this.size(name) !== size) throw sizeMismatch(name, size, this.size(name));
    // One byte more than expected: enough to notice a file that grew since the listing.
    return this._read(name, size, (handle) =>
      digestStream(name, readChunks(handle, size + 1), size, keep),
    );
  }

  /** `use(handle)` on root/name opened without following links or blocking, as listed. */
  async _read(name, size, use) {
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) {
      // Node has no openat: each parent must still be a real folder (not swapped for a link).
      const parent = this._lstat(parts.slice(0, i).join("/"));
      if (!parent.isDirectory()) throw notRegular(parts.slice(0, i).join("/"), parent);
    }
    let handle;
    try {
      handle = await fs.promises.open(
        path.join(this._root, name),
        O_RDONLY | O_NOFOLLOW | O_NONBLOCK,
      );
    } catch (err) {
      if (err.code === "ELOOP" || err.code === "EMLINK") {
        throw new InvalidPackageError(`${name}: is a symlink; ${ONLY_REGULAR}`);
      }
      throw new IntegrityError(`${name}: cannot read (${err.code ?? err.message})`);
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw notRegular(name, stat); // swapped since the listing
      if (stat.size !== size) throw sizeMismatch(name, size, stat.size); // changed since then
      return await use(handle);
    } catch (err) {
      if (err instanceof EdgepackRuntimeError) throw err;
      throw new IntegrityError(`${name}: cannot read (${err.code ?? err.message})`);
    } finally {
      await handle.close();
    }
  }

  close() {}
}

function fileKind(stat) {
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isDirectory()) return "a folder";
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return "a device";
  return stat.isSocket() ? "a socket" : "not a file";
}

/**
 * The bytes of a file a user or app names (an input, an image, a key), refusing anything but a
 * regular file before it is opened: reading a FIFO that has no writer blocks forever (and, in
 * Node, the whole event loop), and a device can stream without end. Then opened O_NONBLOCK and
 * checked again, so a path swapped for a FIFO in between cannot block either. A file longer than
 * `maxBytes` (each caller's cap, limits.js) is refused from its size, unread, and one that
 * changes while it is read is refused. Throws what fs throws (err.code set), or an Error whose
 * message says what the path is instead.
 */
function readRegularFile(file, maxBytes) {
  const refuse = (stat) => new Error(`${fileKind(stat)}, not a regular file`);
  const stat = fs.statSync(file); // follows links: a link to a regular file is that file
  if (!stat.isFile()) throw refuse(stat);
  const fd = fs.openSync(file, O_RDONLY | O_NONBLOCK);
  try {
    const opened = fs.fstatSync(fd);
    if (!opened.isFile()) throw refuse(opened);
    const tooLarge = (n) => new Error(`too large (${n} bytes, over ${maxBytes})`);
    if (opened.size > maxBytes) throw tooLarge(opened.size);
    // The size fstat gave, and one byte more: a file that grew since is refused, not read on.
    const buffer = Buffer.allocUnsafe(opened.size + 1);
    let length = 0;
    for (;;) {
      const n = fs.readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > opened.size) break;
    }
    if (length !== opened.size) throw new Error("changed while it was read");
    return buffer.subarray(0, length);
  } finally {
    fs.closeSync(fd);
  }
}

/** Open a `.edgepack` zip or a package folder; anything else is an InvalidPackageError. */
async function openSource(file) {
  let stat;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new InvalidPackageError(`${file}: no such file or folder`);
  }
  if (stat.isDirectory()) return new FolderSource(file);
  if (!stat.isFile()) {
    throw new InvalidPackageError(
      `${file}: not an edgepack package (expected a .edgepack zip or a folder)`,
    );
  }
  return ZipSource.open(file);
}

module.exports = {
  MANIFEST,
  checkMemberName,
  inflateRatioError,
  maxCompressedSize,
  openSource,
  readRegularFile,
  sizeMismatch,
};
