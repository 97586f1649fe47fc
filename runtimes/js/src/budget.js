"use strict";
// The memory budget of reading a package (docs/package-format.md, "The memory budget"), checked
// once the listing and every size hold and before any file is read, as the Python and C++
// runtimes check it, so a refusal costs no more than the caps:
// - no zip member inflates more than MAX_INFLATE_RATIO times (above INFLATE_RATIO_FLOOR);
// - the files a reader keeps besides the model (samples, sample images, the tokenizer, the
//   recorded generation) hold at most MAX_KEPT_BYTES together, from their listed sizes;
// - each sample array's .npy header is read first (at most HEAD_BYTES) and must fit its use:
//   numbers, the model tensor's dtype, rank and fixed dims, and exactly the listed size; raw
//   samples a whole number of the preprocessing's sample shape.

const { InvalidPackageError } = require("./errors");
const { MAX_KEPT_BYTES } = require("./limits");
const { HEAD_BYTES, checkNpySize, parseNpyHeader } = require("./npy");
const { inflateRatioError } = require("./source");

/** The files a reader holds in memory besides the model, sorted. */
function keptFiles(manifest, referenced) {
  const models = new Set([manifest.model, manifest.mobile?.model]);
  return [...new Set(referenced.filter((p) => !models.has(p)))].sort();
}

/** [file, what it must fit] for every .npy sample (a tensor spec, {values: n} or {}). */
function sampleArrays(manifest) {
  const samples = manifest.samples ?? {};
  const out = [];
  for (const key of ["inputs", "outputs"]) {
    const specs = new Map(manifest[key].map((t) => [t.name, t]));
    for (const [tensor, path] of Object.entries(samples[key] ?? {})) {
      if (!specs.has(tensor)) {
        throw new InvalidPackageError(
          `manifest.json: samples.${key} names '${tensor}', not a model ${key.slice(0, -1)} ` +
            `[${[...specs.keys()].sort()}]`,
        );
      }
      out.push([path, specs.get(tensor)]);
    }
  }
  const raw = samples.raw;
  if (typeof raw === "string" && raw.endsWith(".npy")) {
    const pre = manifest.preprocessing ?? { type: "none" };
    const shape = pre.sample_shape;
    if (pre.type === "tensor" && Array.isArray(shape)) {
      const values = shape.filter(Number.isInteger).reduce((a, b) => a * b, 1);
      out.push([raw, { values }]);
    } else {
      out.push([raw, {}]);
    }
  }
  return out;
}

const NUMPY_DESCR = {
  float16: "<f2",
  float32: "<f4",
  float64: "<f8",
  int8: "|i1",
  int16: "<i2",
  int32: "<i4",
  int64: "<i8",
  uint8: "|u1",
  uint16: "<u2",
  uint32: "<u4",
  uint64: "<u8",
  bool: "|b1",
};

function checkFits(header, name, spec) {
  const refuse = (why) => new InvalidPackageError(`${name}: ${why}: it does not fit its use`);
  const shown = `(${header.shape.join(", ")}${header.shape.length === 1 ? "," : ""})`;
  if (Object.hasOwn(spec, "values")) {
    const count = header.shape.reduce((a, b) => a * b, 1);
    if (spec.values <= 0 || count === 0 || count % spec.values !== 0) {
      throw refuse(
        `shape ${shown} is not a whole number of preprocessing.sample_shape samples ` +
          `(${spec.values} values each)`,
      );
    }
    return;
  }
  if (!Object.hasOwn(spec, "shape")) return;
  const want = NUMPY_DESCR[spec.dtype];
  if (want !== undefined && header.descr.replace(/^=/, "<") !== want) {
    throw refuse(`dtype ${header.descr} for tensor '${spec.name}' of dtype ${spec.dtype}`);
  }
  const dims = spec.shape;
  const fixedOk = dims.every((d, i) => !(Number.isInteger(d) && d >= 0) || header.shape[i] === d);
  if (dims.length !== header.shape.length || !fixedOk) {
    throw refuse(`shape ${shown} for tensor '${spec.name}' of shape [${dims.join(", ")}]`);
  }
}

/** Throw when the package does not fit the memory budget; read only .npy headers. */
async function checkBudget(source, manifest, referenced) {
  for (const name of Object.keys(manifest.files).sort()) {
    const bomb = inflateRatioError(name, source.size(name), source.storedSize(name));
    if (bomb !== null) throw bomb;
  }
  const sizes = new Map(keptFiles(manifest, referenced).map((n) => [n, manifest.files[n].size]));
  let total = 0;
  let biggest = null;
  for (const [name, size] of sizes) {
    total += size;
    if (biggest === null || size > sizes.get(biggest)) biggest = name;
  }
  if (total > MAX_KEPT_BYTES) {
    throw new InvalidPackageError(
      `${biggest}: ${sizes.get(biggest)} bytes; the samples, tokenizer and generation a reader ` +
        `keeps total ${total} bytes, over the ${MAX_KEPT_BYTES / 2 ** 20} MiB cap of the memory ` +
        "budget (edgepack writes a few MB)",
    );
  }
  for (const [name, spec] of sampleArrays(manifest)) {
    const size = sizes.get(name);
    const header = parseNpyHeader(await source.head(name, Math.min(size, HEAD_BYTES)), name);
    checkNpySize(header, size, name);
    checkFits(header, name, spec);
  }
}

module.exports = { checkBudget, keptFiles };
