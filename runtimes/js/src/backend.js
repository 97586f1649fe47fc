"use strict";
// The two onnxruntime builds the runtime can run on, behind one interface:
//   node: onnxruntime-node, the native CPU library (fastest; what a Node app ships)
//   wasm: onnxruntime-web's WebAssembly backend, run under Node here; the same build a browser
//         or a webview loads, so checking it in Node checks what those apps will compute.
// Each is required only when asked for: an app on one backend never loads the other.

const {
  EdgepackRuntimeError,
  InputError,
  InvalidPackageError,
  UnsupportedPackageError,
} = require("./errors");

const BACKENDS = {
  node: { module: "onnxruntime-node", providers: ["cpu"] },
  wasm: { module: "onnxruntime-web", providers: ["wasm"] },
};

const oneLine = (err) =>
  String(err?.message ?? err)
    .split(/\s+/)
    .join(" ")
    .trim();

function checkBackend(name) {
  if (!Object.hasOwn(BACKENDS, name)) {
    throw new TypeError(
      `backend must be one of ${Object.keys(BACKENDS).join(", ")}, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

class Backend {
  constructor(name, threads) {
    const spec = BACKENDS[checkBackend(name)];
    this.name = name;
    try {
      this.ort = require(spec.module);
    } catch (err) {
      throw new UnsupportedPackageError(
        `backend ${name} needs the npm package ${spec.module} (${oneLine(err)})`,
      );
    }
    this.version = this.ort.env.versions?.[name === "node" ? "node" : "web"] ?? "?";
    this._providers = spec.providers;
    this._threads = threads;
    this.ort.env.logLevel = "error"; // warnings would clutter an app's stderr
    if (name === "wasm") {
      // One thread unless asked: wasm threads are Node workers, and the answers do not change.
      this.ort.env.wasm.numThreads = threads ?? 1;
    }
  }

  /** An InferenceSession on the model bytes; parse failures are a broken package. */
  async session(model, modelPath) {
    const options = { executionProviders: this._providers, logSeverityLevel: 3 };
    if (this._threads !== undefined && this.name === "node") {
      options.intraOpNumThreads = this._threads;
    }
    if (modelPath.endsWith(".ort")) {
      options.extra = { session: { load_model_format: "ORT" } };
    }
    try {
      return await this.ort.InferenceSession.create(model, options);
    } catch (err) {
      const message = oneLine(err);
      if (/protobuf parsing failed|invalid graph|invalid_protobuf|invalid model/i.test(message)) {
        throw new InvalidPackageError(
          `${modelPath}: onnxruntime cannot parse the model: ${message}`,
        );
      }
      throw new UnsupportedPackageError(
        `${modelPath}: onnxruntime ${this.name} ${this.version} cannot load the model: ${message}`,
      );
    }
  }

  /** Run a session on `{name: {dtype, shape, data}}` feeds; return outputs in the same form. */
  async run(session, feeds) {
    const tensors = {};
    for (const [name, { dtype, shape, data }] of Object.entries(feeds)) {
      try {
        tensors[name] = new this.ort.Tensor(dtype, data, shape);
      } catch (err) {
        throw new InputError(`input ${name}: ${oneLine(err)}`);
      }
    }
    let results;
    try {
      results = await session.run(tensors);
    } catch (err) {
      const message = oneLine(err);
      // Wrong rank, size or dtype is the caller's input, not the package.
      if (/invalid rank|invalid dimensions|unexpected input data type|got invalid/i.test(message)) {
        throw new InputError(`onnxruntime rejected the input: ${message}`);
      }
      throw new EdgepackRuntimeError(`onnxruntime failed to run: ${message}`);
    }
    const outputs = {};
    for (const name of session.outputNames) {
      const t = results[name];
      outputs[name] = { dtype: t.type, shape: [...t.dims], data: t.data };
    }
    return outputs;
  }
}

module.exports = { BACKENDS, Backend, checkBackend };
