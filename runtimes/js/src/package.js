"use strict";
// load() and Package: a verified package with an onnxruntime session behind it.

const { Backend, checkBackend } = require("./backend");
const { InputError, InvalidPackageError, SampleMismatchError } = require("./errors");
const { MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES } = require("./limits");
const { parseJson, parseManifest, referencedFiles, verifyFiles } = require("./manifest");
const { readNpy } = require("./npy");
const { checkFinite, makePostprocessor, makePreprocessor, packageLabels } = require("./processing");
const { SIGNATURE, loadPublicKey, verifySignature } = require("./signature");
const { MANIFEST, openSource } = require("./source");

class Package {
  /** Use load(); the constructor takes what load() has already verified. */
  constructor({ manifest, backend, session, files, preprocess, postprocess, signed }) {
    this.manifest = manifest;
    this.backend = backend.name;
    this.signed = signed; // true only when a public key was given and the signature matched
    this._backend = backend;
    this._session = session;
    this._files = files; // verified bytes of the samples, kept for later
    this._preprocess = preprocess;
    this._postprocess = postprocess;
  }

  get name() {
    return this.manifest.name;
  }

  get version() {
    return this.manifest.version;
  }

  get task() {
    return this.manifest.task;
  }

  get labels() {
    return packageLabels(this.manifest);
  }

  /** A JSON-ready summary: what the package is, its I/O, and what was measured. */
  info() {
    const m = this.manifest;
    return {
      name: m.name,
      version: m.version,
      task: m.task,
      schema_version: m.schema_version,
      inputs: m.inputs,
      outputs: m.outputs,
      preprocessing: m.preprocessing ?? { type: "none" },
      postprocessing: m.postprocessing ?? { type: "none" },
      labels: this.labels,
      metrics: m.metrics ?? {},
      files: Object.keys(m.files).length,
      model_size: m.files[m.model].size,
      backend: this.backend,
    };
  }

  /**
   * Raw app input -> model feeds `{name: {dtype, shape, data}}`, per the manifest. A text
   * package's preprocess is async (resolves to the feeds): strings -> token ids.
   */
  preprocess(raw) {
    return this._preprocess(raw);
  }

  /** Run the model on feeds by input name; resolve to every output by name. */
  async run(feeds) {
    const expected = this._session.inputNames;
    const given = Object.keys(feeds);
    const unknown = given.filter((n) => !expected.includes(n));
    const missing = expected.filter((n) => !given.includes(n));
    if (unknown.length > 0 || missing.length > 0) {
      throw new InputError(
        `feeds must be exactly the model inputs [${expected}]` +
          (unknown.length ? `; unknown: [${unknown}]` : "") +
          (missing.length ? `; missing: [${missing}]` : ""),
      );
    }
    for (const [name, feed] of Object.entries(feeds)) checkFinite(name, feed?.data);
    return this._backend.run(this._session, feeds);
  }

  /**
   * Preprocess, run and postprocess: `{labels, indices, scores, probabilities, outputs}` for a
   * classifier, `{embeddings, outputs}` for feature extraction. Text packages take a string or
   * a list of strings.
   */
  async predict(raw) {
    const feeds = await this.preprocess(raw);
    return this._postprocess(await this.run(feeds), feeds);
  }

  /** The language model of a text-generation package (LanguageModel), made on first use. */
  get lm() {
    if (this._lm === undefined) {
      const { LanguageModel } = require("./lm");
      this._lm = new LanguageModel(this);
    }
    return this._lm;
  }

  /**
   * Stream the greedy continuation of `prompt` as text pieces (an async iterator): `prompt` is
   * a string, or chat messages [{role, content}, ...] that the package's chat template turns
   * into the prompt (options.chat true makes a string one user message); the pieces are then
   * the assistant's reply. options: maxNewTokens (default: the package's), stop (strings,
   * besides the package's stop_strings), chat. Ends at an EOS id or before a stop string.
   */
  generate(prompt, options = {}) {
    return this.lm.stream(prompt, options);
  }

  /** A verified .npy file of the package (e.g. "samples/raw.npy") as `{dtype, shape, data}`. */
  npy(path) {
    const bytes = this._files.get(path);
    if (bytes === undefined) {
      throw new InvalidPackageError(`${path}: not a sample file of this package`);
    }
    return readNpy(bytes, path);
  }

  /**
   * Replay the recorded samples and compare with the recorded tensors: every element must
   * satisfy |got - expected| <= atol + rtol * |expected| (numpy.allclose's rule).
   */
  async checkSamples() {
    const samples = this.manifest.samples;
    if (!samples) {
      throw new InvalidPackageError(`${MANIFEST}: the package records no samples to check`);
    }
    const { atol, rtol } = samples;
    const recorded = {};
    for (const [name, file] of Object.entries(samples.inputs ?? {}))
      recorded[name] = this.npy(file);
    const maxAbsDiff = {};
    const failures = [];
    let feeds;
    if (Object.hasOwn(samples, "images")) {
      feeds = this._imageFeeds(samples, recorded, maxAbsDiff, failures);
      for (const name of Object.keys(recorded)) delete recorded[name];
    } else if (Object.hasOwn(samples, "raw")) {
      // Raw inputs: an .npy array, or a JSON list (the strings of a text package).
      const raw = samples.raw.endsWith(".json")
        ? parseJson(this._files.get(samples.raw), samples.raw)
        : this.npy(samples.raw);
      feeds = await this.preprocess(raw);
    } else {
      feeds = { ...recorded };
    }
    const got = { ...feeds, ...(await this.run(feeds)) };
    for (const [name, file] of Object.entries(samples.outputs)) recorded[name] = this.npy(file);

    for (const [name, expected] of Object.entries(recorded)) {
      if (!Object.hasOwn(got, name)) {
        throw new InvalidPackageError(`${MANIFEST}: samples name unknown tensor ${name}`);
      }
      const actual = got[name];
      if (actual.shape.join() !== expected.shape.join()) {
        maxAbsDiff[name] = Infinity;
        failures.push(`${name}: shape (${actual.shape}) != recorded (${expected.shape})`);
        continue;
      }
      const { max, ok } = compare(actual.data, expected.data, atol, rtol);
      maxAbsDiff[name] = max;
      if (!ok) failures.push(`${name}: max abs diff ${fmt(max)}`);
    }
    const count = Object.values(got)[0].shape[0];
    const within = `within atol=${atol}, rtol=${rtol}`;
    let generated = "";
    if (this.manifest.generation) {
      // A language model: its recorded greedy generation, token for token.
      const { replayGeneration } = require("./generation");
      try {
        const done = await replayGeneration(this);
        generated = `; generation: ${done.prompts} prompts, ${done.tokens} greedy tokens reproduced`;
      } catch (err) {
        if (!(err instanceof SampleMismatchError)) throw err;
        failures.push(err.message);
      }
    }
    const message = failures.length
      ? `${count} samples do not reproduce ${within}: ${failures.join("; ")}`
      : `${count} samples reproduce ${within} (` +
        Object.entries(maxAbsDiff)
          .map(([n, d]) => `${n}=${fmt(d)}`)
          .join(", ") +
        ")" +
        generated;
    return { ok: failures.length === 0, count, maxAbsDiff, message, generated };
  }

  /**
   * Each sample image through this runtime's decoder and preprocessing, compared with the
   * recorded model input: a PNG within atol (the same tensor in every runtime), a JPEG within
   * samples.jpeg_atol (decoders differ). The model runs on this runtime's own tensor for PNGs
   * and on the recorded one for JPEGs.
   */
  _imageFeeds(samples, recorded, maxAbsDiff, failures) {
    const pre = this._preprocess;
    if (pre.one === undefined || !Object.hasOwn(recorded, pre.input)) {
      throw new InvalidPackageError(
        `${MANIFEST}: samples.images needs image preprocessing and a recorded input`,
      );
    }
    const expected = recorded[pre.input];
    const rows = samples.images.length;
    if (rows !== expected.shape[0]) {
      throw new InvalidPackageError(
        `${MANIFEST}: ${rows} sample images for ${expected.shape[0]} recorded inputs`,
      );
    }
    const per = expected.data.length / rows;
    const data = new expected.data.constructor(expected.data.length);
    samples.images.forEach((path, i) => {
      const bytes = this._files.get(path);
      const x = pre.one(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
      const jpeg = /\.jpe?g$/i.test(path);
      const tol = jpeg ? (samples.jpeg_atol ?? 0) : samples.atol;
      const want = expected.data.subarray(i * per, (i + 1) * per);
      let diff = x.data.length === per ? 0 : Infinity;
      for (let j = 0; j < per && diff !== Infinity; j++) {
        diff = Math.max(diff, Math.abs(Number(x.data[j]) - Number(want[j])));
      }
      const key = `${pre.input} (${jpeg ? "jpeg" : "png"})`;
      maxAbsDiff[key] = Math.max(maxAbsDiff[key] ?? 0, diff);
      if (!(diff <= tol)) failures.push(`${path}: preprocessed max abs diff ${fmt(diff)} > ${tol}`);
      data.set(jpeg || diff === Infinity ? want : x.data, i * per);
    });
    return { [pre.input]: { dtype: expected.dtype, shape: expected.shape, data } };
  }

  /** checkSamples, throwing SampleMismatchError when the samples do not reproduce. */
  async verify() {
    const result = await this.checkSamples();
    if (!result.ok) throw new SampleMismatchError(result.message);
    return result;
  }
}

function compare(actual, expected, atol, rtol) {
  let max = 0;
  let ok = true;
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [Number(actual[i]), Number(expected[i])];
    const diff = Math.abs(a - e);
    max = Math.max(max, diff);
    if (!(diff <= atol + rtol * Math.abs(e))) ok = false; // NaN fails, as in numpy
  }
  return { max, ok };
}

/** Like Python's "%.3g": 0, 0.773, 1.47, 5.72e-06. */
function fmt(x) {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const exponent = Math.floor(Math.log10(Math.abs(x)));
  if (exponent < -4 || exponent >= 3) return x.toExponential(2).replace(/e([+-])(\d)$/, "e$10$2");
  return String(Number(x.toPrecision(3)));
}

function checkThreads(threads) {
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new TypeError(`threads must be a positive integer, got ${threads}`);
  }
}

/**
 * Open a `.edgepack` zip or package folder, verify it, and create the model session.
 *
 * Order matters: with a `publicKey`, manifest.sig is checked against the exact manifest bytes
 * first; then the schema major, the fields, and every file's size and sha256. The model reaches
 * onnxruntime only once all of that has passed.
 *
 * options.backend: "node" (onnxruntime-node, default) or "wasm" (onnxruntime-web);
 * options.publicKey: ed25519 public key (PEM text, a path to a .pem, or a KeyObject);
 * options.threads: intra-op threads.
 * Bad option values throw TypeError; everything about the package an EdgepackRuntimeError.
 */
async function load(path, options = {}) {
  const { backend = "node", publicKey, threads } = options;
  checkBackend(backend);
  checkThreads(threads);
  const key = publicKey === undefined ? null : loadPublicKey(publicKey);
  const source = await openSource(path);
  let manifest;
  let files;
  try {
    const manifestBytes = await readManifestBytes(source);
    if (key !== null) verifySignature(manifestBytes, await readSignature(source), key);
    manifest = parseManifest(manifestBytes);
    files = await verifyFiles(source, manifest, new Set(referencedFiles(manifest)));
  } finally {
    source.close();
  }
  // Pre/postprocessing blocks are checked before the (slower) session is built.
  const preprocess = makePreprocessor(manifest, files);
  const postprocess = makePostprocessor(manifest);
  const runtime = new Backend(backend, threads);
  const modelPath = manifest.model;
  const model = files.get(modelPath);
  files.delete(modelPath);
  const session = await runtime.session(new Uint8Array(model), modelPath);
  checkIo(manifest, session);
  return new Package({
    manifest,
    backend: runtime,
    session,
    files,
    preprocess,
    postprocess,
    signed: key !== null,
  });
}

async function readManifestBytes(source) {
  const names = source.names();
  if (!names.has(MANIFEST)) {
    const nested = [...names].filter((n) => n.endsWith(`/${MANIFEST}`)).sort();
    const hint = nested.length
      ? ` (found ${nested[0]}: package the folder's contents, not the folder)`
      : "";
    throw new InvalidPackageError(`${source.label}: no ${MANIFEST} at the package root${hint}`);
  }
  const size = source.size(MANIFEST);
  if (size > MAX_MANIFEST_BYTES) {
    throw new InvalidPackageError(
      `${MANIFEST}: ${size} bytes, larger than the ${MAX_MANIFEST_BYTES / 2 ** 20} MiB cap ` +
        "for a manifest (a manifest is a few KB)",
    );
  }
  return (await source.digest(MANIFEST, size, true)).bytes;
}

async function readSignature(source) {
  if (!source.names().has(SIGNATURE)) return null;
  const size = source.size(SIGNATURE);
  if (size > MAX_SIGNATURE_BYTES) {
    throw new InvalidPackageError(`${SIGNATURE}: ${size} bytes, larger than a signature can be`);
  }
  return (await source.digest(SIGNATURE, size, true)).bytes;
}

/** The manifest's inputs/outputs must be the model's: apps and samples rely on the names. */
function checkIo(manifest, session) {
  const names = (list) => [...list].sort().join(", ");
  const declared = [manifest.inputs.map((t) => t.name), manifest.outputs.map((t) => t.name)];
  const actual = [session.inputNames, session.outputNames];
  if (names(declared[0]) !== names(actual[0]) || names(declared[1]) !== names(actual[1])) {
    throw new InvalidPackageError(
      `${MANIFEST}: inputs/outputs [${names(declared[0])}]/[${names(declared[1])}] do not match ` +
        `${manifest.model}: [${names(actual[0])}]/[${names(actual[1])}]`,
    );
  }
}

module.exports = { Package, fmt, load };
