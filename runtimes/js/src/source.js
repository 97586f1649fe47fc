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
const yauzl = require("yauzl");
const { EdgepackRuntimeError, IntegrityError, InvalidPackageError } = require("./errors");

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
 * sha256 of exactly `size` bytes of a stream, plus the bytes when `keep` (one pass, read once).
 * Throws as soon as the stream holds more than `size` bytes, or at its end if fewer.
 */
async function digestStream(name, stream, size, keep) {
  const sha = crypto.createHash("sha256");
  const parts = [];
  let got = 0;
  for await (const chunk of stream) {
    got += chunk.length;
    if (got > size) throw sizeMismatch(name, size, got);
    sha.update(chunk);
    if (keep) parts.push(chunk);
  }
  if (got !== size) throw sizeMismatch(name, size, got);
  return { sha256: sha.digest("hex"), bytes: keep ? Buffer.concat(parts) : null };
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

  /** Exactly `size` bytes of a member: hashed, and kept when `keep`. */
  async digest(name, size, keep) {
    if (this.size(name) !== size) throw sizeMismatch(name, size, this.size(name));
    try {
      // yauzl also checks that the inflated size is the declared one (validateEntrySizes).
      const stream = await this._zip.openReadStreamPromise(this._entries.get(name));
      return await digestStream(name, stream, size, keep);
    } catch (err) {
      if (err instanceof EdgepackRuntimeError) throw err;
      // A bad stream or an encrypted member: the file is not the one that was packaged.
      throw new IntegrityError(`${name}: cannot read zip member (${err.message})`);
    }
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

  /** Exactly `size` bytes of a file, never through a link, never blocking on a FIFO. */
  async digest(name, size, keep) {
    if (this.size(name) !== size) throw sizeMismatch(name, size, this.size(name));
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
      // One byte more than expected: enough to notice a file that grew since the listing.
      return await digestStream(name, readChunks(handle, size + 1), size, keep);
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
 * checked again, so a path swapped for a FIFO in between cannot block either. With `maxBytes`,
 * a longer file is refused from its size, unread. Throws what fs throws (err.code set), or an
 * Error whose message says what the path is instead.
 */
function readRegularFile(file, maxBytes = 0) {
  const refuse = (stat) => new Error(`${fileKind(stat)}, not a regular file`);
  const stat = fs.statSync(file); // follows links: a link to a regular file is that file
  if (!stat.isFile()) throw refuse(stat);
  const fd = fs.openSync(file, O_RDONLY | O_NONBLOCK);
  try {
    const opened = fs.fstatSync(fd);
    if (!opened.isFile()) throw refuse(opened);
    const tooLarge = (n) => new Error(`too large (${n} bytes, over ${maxBytes})`);
    if (maxBytes <= 0) return fs.readFileSync(fd);
    if (opened.size > maxBytes) throw tooLarge(opened.size);
    const buffer = Buffer.alloc(maxBytes + 1); // bounded even if the file grew since the fstat
    let length = 0;
    for (;;) {
      const n = fs.readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) throw tooLarge(length);
    }
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
  maxCompressedSize,
  openSource,
  readRegularFile,
  sizeMismatch,
};
