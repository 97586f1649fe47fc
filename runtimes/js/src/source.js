"use strict";
// Read the files of a package, whether it is a `.edgepack` zip or a folder with the same tree.
//
// Nothing is extracted to disk: members are streamed out of the zip (yauzl), so a hostile member
// name can never write anywhere, and the bytes that are hashed are the bytes that are used.

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const yauzl = require("yauzl");
const { IntegrityError, InvalidPackageError } = require("./errors");

const MANIFEST = "manifest.json";

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

/** sha256 of a stream's bytes, plus the bytes themselves when `keep` (one pass, read once). */
async function digestStream(stream, keep) {
  const sha = crypto.createHash("sha256");
  const parts = [];
  for await (const chunk of stream) {
    sha.update(chunk);
    if (keep) parts.push(chunk);
  }
  return { sha256: sha.digest("hex"), bytes: keep ? Buffer.concat(parts) : null };
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
      for await (const entry of zip.eachEntry()) {
        checkMemberName(entry.fileName, file);
        if (entry.fileName.endsWith("/")) continue;
        if (entries.has(entry.fileName)) {
          // Two members with one name: which one a reader sees is up to the reader.
          throw new InvalidPackageError(
            `${file}: duplicate zip member ${JSON.stringify(entry.fileName)}`,
          );
        }
        entries.set(entry.fileName, entry);
      }
    } catch (err) {
      zip.close();
      if (err instanceof InvalidPackageError) throw err;
      throw new InvalidPackageError(`${file}: not a readable zip (${err.message})`);
    }
    return new ZipSource(file, zip, entries);
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

  async digest(name, keep) {
    try {
      // yauzl checks that the inflated size is the declared one (validateEntrySizes).
      const stream = await this._zip.openReadStreamPromise(this._entries.get(name));
      return await digestStream(stream, keep);
    } catch (err) {
      // A bad stream or an encrypted member: the file is not the one that was packaged.
      throw new IntegrityError(`${name}: cannot read zip member (${err.message})`);
    }
  }

  close() {
    this._zip.close();
  }
}

class FolderSource {
  constructor(root) {
    this.label = root;
    this._root = root;
    this._names = new Set();
    for (const entry of fs.readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (entry.isDirectory()) continue;
      const rel = path.relative(root, path.join(entry.parentPath ?? entry.path, entry.name));
      this._names.add(rel.split(path.sep).join("/"));
    }
  }

  names() {
    return new Set(this._names);
  }

  size(name) {
    return fs.statSync(path.join(this._root, name)).size;
  }

  async digest(name, keep) {
    try {
      return await digestStream(fs.createReadStream(path.join(this._root, name)), keep);
    } catch (err) {
      throw new IntegrityError(`${name}: cannot read (${err.message})`);
    }
  }

  close() {}
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
  return ZipSource.open(file);
}

module.exports = { MANIFEST, checkMemberName, openSource };
