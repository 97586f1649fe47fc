"use strict";
// The manifest contract (docs/package-format.md, schema 1.x), checked in the same order as the
// Python runtime: JSON object -> schema major (before any other field, so a 2.0 package gets
// "upgrade the runtime", not a complaint about a renamed field) -> the fields the runtime reads
// -> the package holds exactly the listed files, each of its size (all checked before any is
// read) -> every listed file's sha256. Sizes and nesting are capped (limits.js).

const { MANIFEST, checkMemberName, sizeMismatch } = require("./source");
const { IntegrityError, InvalidPackageError, SchemaVersionError } = require("./errors");
const { MAX_FILE_BYTES, MAX_JSON_DEPTH, MAX_MANIFEST_BYTES } = require("./limits");
const { version: RUNTIME_VERSION } = require("../package.json");

const SUPPORTED_MAJOR = 1;
// Present in a package but never listed under "files": they describe the listing itself.
const UNLISTED = new Set([MANIFEST, "manifest.sig"]);
const SHA256_HEX = /^[0-9a-f]{64}$/;

const typeName = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/** How deep [ and { nest in JSON text, counted without parsing (strings and escapes skipped). */
function jsonDepth(text) {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      deepest = Math.max(deepest, ++depth);
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

// The same words in the three runtimes: readers ignoring a BOM and readers refusing it would
// disagree on whether a package is valid, and edgepack never writes one.
const BOM_REFUSED =
  "it starts with a UTF-8 byte order mark, which JSON text must not have (RFC 8259): " +
  "write the file without one";

/** JSON.parse's reviver: a number beyond a double (1e999) parses as Infinity; refuse it. */
function finiteNumbers(key, value) {
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new RangeError(`the number at '${key}' is out of range of a double`);
  }
  return value;
}

/**
 * JSON.parse of a package file's bytes, the way the Python and C++ runtimes parse it, so all
 * three accept the same files: nesting past MAX_JSON_DEPTH is refused first (V8 parses deep
 * documents, but anything that later walks one, a copy or JSON.stringify, overflows the stack);
 * so are a UTF-8 byte order mark (TextDecoder would drop it) and numbers beyond a double.
 */
function parseJson(bytes, where) {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new InvalidPackageError(`${where}: not valid JSON (${BOM_REFUSED})`);
  }
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    throw new InvalidPackageError(`${where}: not valid JSON (${err.message})`);
  }
  if (jsonDepth(text) > MAX_JSON_DEPTH) {
    throw new InvalidPackageError(
      `${where}: JSON nested deeper than ${MAX_JSON_DEPTH} levels (edgepack writes at most a ` +
        "few): refusing to parse it",
    );
  }
  try {
    return JSON.parse(text, finiteNumbers);
  } catch (err) {
    throw new InvalidPackageError(`${where}: not valid JSON (${err.message})`);
  }
}

/** Parse manifest.json bytes, check the schema major and the fields the runtime reads. */
function parseManifest(bytes) {
  const manifest = parseJson(bytes, MANIFEST);
  if (typeName(manifest) !== "object") {
    throw new InvalidPackageError(`${MANIFEST}: expected a JSON object at the top level`);
  }
  checkSchemaVersion(manifest.schema_version);
  validate(manifest);
  return manifest;
}

/** Throw SchemaVersionError for an unknown major; InvalidPackageError if malformed. */
function checkSchemaVersion(version) {
  if (version === undefined) {
    throw new InvalidPackageError(`${MANIFEST}: missing required field 'schema_version'`);
  }
  const match = typeof version === "string" ? /^(\d+)\.(\d+)$/.exec(version) : null;
  if (!match) {
    throw new InvalidPackageError(
      `${MANIFEST}: schema_version must be a 'MAJOR.MINOR' string, got ${JSON.stringify(version)}`,
    );
  }
  if (Number(match[1]) !== SUPPORTED_MAJOR) {
    throw new SchemaVersionError(
      `schema_version ${version} is not supported by the edgepack JS runtime ${RUNTIME_VERSION} ` +
        `(supports ${SUPPORTED_MAJOR}.x)`,
    );
  }
}

function require_(obj, key, kind, where) {
  if (!Object.hasOwn(obj, key)) {
    throw new InvalidPackageError(`${MANIFEST}: missing required field '${where}${key}'`);
  }
  const got = typeName(obj[key]);
  if (!kind.split("/").includes(got)) {
    throw new InvalidPackageError(
      `${MANIFEST}: field '${where}${key}' must be ${kind}, got ${got}`,
    );
  }
  return obj[key];
}

/** Check the fields the runtime reads; the rest (lineage, metrics, ...) is informational. */
function validate(manifest) {
  for (const key of ["name", "version", "task", "model"]) require_(manifest, key, "string", "");
  for (const key of ["inputs", "outputs"]) {
    const specs = require_(manifest, key, "array", "");
    if (specs.length === 0) {
      throw new InvalidPackageError(`${MANIFEST}: '${key}' must list at least one tensor`);
    }
    specs.forEach((spec, i) => {
      if (typeName(spec) !== "object") {
        throw new InvalidPackageError(`${MANIFEST}: '${key}[${i}]' must be an object`);
      }
      require_(spec, "name", "string", `${key}[${i}].`);
      require_(spec, "dtype", "string", `${key}[${i}].`);
      require_(spec, "shape", "array", `${key}[${i}].`);
    });
  }
  const files = require_(manifest, "files", "object", "");
  for (const [name, entry] of Object.entries(files)) {
    checkMemberName(name, MANIFEST);
    if (typeName(entry) !== "object") {
      throw new InvalidPackageError(`${MANIFEST}: 'files.${name}' must be an object`);
    }
    if (!SHA256_HEX.test(require_(entry, "sha256", "string", `files.${name}.`))) {
      throw new InvalidPackageError(`${MANIFEST}: 'files.${name}.sha256' is not a sha256 hex`);
    }
    const size = require_(entry, "size", "number", `files.${name}.`);
    if (!Number.isInteger(size) || size < 0) {
      throw new InvalidPackageError(
        `${MANIFEST}: 'files.${name}.size' must be a whole number >= 0`,
      );
    }
    if (size > MAX_FILE_BYTES) {
      throw new InvalidPackageError(
        `${MANIFEST}: files.${name}.size is ${size} bytes, larger than the ` +
          `${MAX_FILE_BYTES / 2 ** 30} GiB cap for a package file`,
      );
    }
  }
  for (const key of ["preprocessing", "postprocessing", "samples"]) {
    if (Object.hasOwn(manifest, key)) require_(manifest, key, "object", "");
  }
  for (const file of referencedFiles(manifest)) {
    if (!Object.hasOwn(files, file)) {
      throw new InvalidPackageError(`${MANIFEST}: ${file} is referenced but not listed in 'files'`);
    }
  }
  const samples = manifest.samples;
  if (samples !== undefined) {
    require_(samples, "outputs", "object", "samples.");
    if (Object.hasOwn(samples, "raw")) require_(samples, "raw", "string", "samples.");
    if (Object.hasOwn(samples, "inputs")) require_(samples, "inputs", "object", "samples.");
    require_(samples, "atol", "number", "samples.");
    require_(samples, "rtol", "number", "samples.");
    if (Object.hasOwn(samples, "jpeg_atol")) require_(samples, "jpeg_atol", "number", "samples.");
  }
}

/**
 * The package files the runtime itself reads: the model, the samples, a tokenizer (and its
 * tokenizer_config.json, whose special tokens a chat template may name), a chat template, a
 * recorded generation.
 */
function referencedFiles(manifest) {
  const paths = [manifest.model];
  const samples = manifest.samples ?? {};
  if (typeof samples.raw === "string") paths.push(samples.raw);
  if (Array.isArray(samples.images)) paths.push(...samples.images.filter((p) => typeof p === "string"));
  for (const key of ["inputs", "outputs"]) {
    if (typeName(samples[key]) === "object") {
      paths.push(...Object.values(samples[key]).filter((p) => typeof p === "string"));
    }
  }
  const tokenizer = manifest.preprocessing?.tokenizer;
  if (typeof tokenizer === "string") paths.push(tokenizer);
  if (Object.hasOwn(manifest.files ?? {}, "tokenizer_config.json")) paths.push("tokenizer_config.json");
  const generation = manifest.generation ?? {};
  for (const key of ["tokenizer", "sample", "chat_template"]) {
    if (typeof generation[key] === "string") paths.push(generation[key]);
  }
  return paths;
}

/**
 * Check every file against the manifest; return a Map of the bytes of the `keep` files.
 * The listing and every size come first (a size is free, and it stops a zip bomb before a byte
 * is inflated); then each file is read once, to exactly its size: the bytes that are hashed are
 * the bytes the runtime uses, so a file swapped between the check and the use cannot slip through.
 */
async function verifyFiles(source, manifest, keep) {
  const present = source.names();
  const unlisted = [...present]
    .filter((n) => !Object.hasOwn(manifest.files, n) && !UNLISTED.has(n))
    .sort();
  if (unlisted.length > 0) {
    const more = unlisted.length > 1 ? ` (and ${unlisted.length - 1} more)` : "";
    throw new IntegrityError(
      `${unlisted[0]}: present in the package but not listed in the manifest${more}`,
    );
  }
  for (const [name, entry] of Object.entries(manifest.files)) {
    if (!present.has(name)) {
      throw new IntegrityError(`${name}: listed in the manifest but missing from the package`);
    }
    if (source.size(name) !== entry.size) throw sizeMismatch(name, entry.size, source.size(name));
  }
  const kept = new Map();
  for (const [name, entry] of Object.entries(manifest.files)) {
    const { sha256, bytes } = await source.digest(name, entry.size, keep.has(name));
    if (sha256 !== entry.sha256) {
      throw new IntegrityError(
        `${name}: sha256 mismatch (expected ${entry.sha256.slice(0, 12)}…, got ` +
          `${sha256.slice(0, 12)}…): the package was modified after it was built`,
      );
    }
    if (bytes !== null) kept.set(name, bytes);
  }
  return kept;
}

module.exports = {
  MAX_MANIFEST_BYTES,
  SUPPORTED_MAJOR,
  checkSchemaVersion,
  jsonDepth,
  parseJson,
  parseManifest,
  referencedFiles,
  verifyFiles,
};
