"use strict";
// Raw app input -> model feeds and model outputs -> a prediction, as the manifest's
// "preprocessing" and "postprocessing" blocks describe (docs/package-format.md). The numbers
// follow the Python runtime: arithmetic in float64, one cast to the model dtype at the end.
//
// Arrays are plain `{dtype, shape, data}` objects (what readNpy returns), so the same code
// serves onnxruntime-node and onnxruntime-web, whose Tensor classes differ.

const { InputError, InvalidPackageError, UnsupportedPackageError } = require("./errors");

const TYPED_ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

function typedArrayFor(dtype, where) {
  const TypedArray = TYPED_ARRAYS[dtype];
  if (!TypedArray) {
    throw new UnsupportedPackageError(
      `${where}: dtype ${JSON.stringify(dtype)} is not supported by the JS runtime ` +
        `(supported: ${Object.keys(TYPED_ARRAYS).join(", ")})`,
    );
  }
  return TypedArray;
}

/** Copy numbers into the dtype's TypedArray (truncating toward zero for integers, like numpy). */
function castTo(dtype, values) {
  const TypedArray = typedArrayFor(dtype, "cast");
  const out = new TypedArray(values.length);
  if (TypedArray === BigInt64Array) {
    for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(values[i]));
  } else if (TypedArray === Float32Array || TypedArray === Float64Array) {
    out.set(values); // rounds to nearest float32, as numpy's astype
  } else {
    for (let i = 0; i < values.length; i++) out[i] = Math.trunc(values[i]);
  }
  return out;
}

/** A float64 copy of a TypedArray (callers mutate it). BigInt64Array needs a loop: the
 * constructor refuses it, and `Float64Array.from(x, Number)` is far slower on big outputs. */
function toFloat64(values) {
  if (!(values instanceof BigInt64Array)) return new Float64Array(values);
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
  return out;
}

/** Every value of an ndarray, TypedArray or (nested) array of numbers, as float64, in C order. */
function flatNumbers(raw) {
  const source = raw !== null && typeof raw === "object" && "data" in raw ? raw.data : raw;
  if (ArrayBuffer.isView(source)) return toFloat64(source);
  if (!Array.isArray(source)) {
    throw new InputError("input must be numbers: an array, a TypedArray or {data, shape}");
  }
  const flat = source.flat(Infinity);
  if (!flat.every((v) => typeof v === "number")) throw new InputError("input must be numeric");
  return Float64Array.from(flat);
}

/**
 * Refuse NaN and infinity in an input (InputError naming it): a model answers them with a label
 * that means nothing, and the app should hear that its input is broken. Integers pass untouched.
 */
function checkFinite(name, values) {
  if (!(
    values instanceof Float32Array ||
    values instanceof Float64Array ||
    Array.isArray(values)
  )) {
    return values;
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new InputError(
        `input '${name}': contains NaN or infinity (${values[i]} at flat index ${i}): ` +
          "pass finite numbers",
      );
    }
  }
  return values;
}

function number(spec, key, fallback) {
  const value = spec[key] ?? fallback;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InvalidPackageError(`manifest.json: preprocessing.${key} must be a finite number`);
  }
  return value;
}

/** The model input a preprocessing block feeds: named by "input", or the only one. */
function targetInput(spec, inputs) {
  const names = inputs.map((i) => i.name);
  if (spec.input === undefined) {
    if (inputs.length !== 1) {
      throw new InvalidPackageError(
        `manifest.json: preprocessing.input is required for a model with inputs ${names}`,
      );
    }
    return inputs[0];
  }
  const found = inputs.find((i) => i.name === spec.input);
  if (!found) {
    throw new InvalidPackageError(
      `manifest.json: preprocessing.input ${JSON.stringify(spec.input)} is not a model input ` +
        `(${names})`,
    );
  }
  return found;
}

/** type "tensor": x = (raw * scale + offset - mean) / std, cast, reshaped to (-1, ...sample). */
function tensorPreprocessor(spec, inputs) {
  const target = targetInput(spec, inputs);
  const dtype = spec.dtype ?? target.dtype;
  typedArrayFor(dtype, "manifest.json: preprocessing.dtype");
  const sampleShape = spec.sample_shape;
  if (!Array.isArray(sampleShape) || !sampleShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new InvalidPackageError(
      "manifest.json: preprocessing.sample_shape must be a list of positive integers",
    );
  }
  const [scale, offset, mean, std] = [
    number(spec, "scale", 1),
    number(spec, "offset", 0),
    number(spec, "mean", 0),
    number(spec, "std", 1),
  ];
  if (std === 0) throw new InvalidPackageError("manifest.json: preprocessing.std must not be 0");
  const perSample = sampleShape.reduce((a, b) => a * b, 1);

  return (raw) => {
    const x = checkFinite(target.name, flatNumbers(raw));
    if (x.length === 0 || x.length % perSample !== 0) {
      throw new InputError(
        `input has ${x.length} values, not a whole number of samples of shape ` +
          `(${sampleShape}) (${perSample} values each)`,
      );
    }
    for (let i = 0; i < x.length; i++) x[i] = (x[i] * scale + offset - mean) / std;
    const shape = [x.length / perSample, ...sampleShape];
    return { [target.name]: { dtype, shape, data: castTo(dtype, x) } };
  };
}

/** type "none": raw is the model feed already ({name: array} for a multi-input model). */
function nonePreprocessor(inputs) {
  const dtypes = Object.fromEntries(inputs.map((i) => [i.name, i.dtype]));
  return (raw) => {
    const named = inputs.length === 1 && !isFeedMap(raw, dtypes) ? { [inputs[0].name]: raw } : raw;
    if (!isFeedMap(named, dtypes)) {
      throw new InputError(`this model has inputs ${Object.keys(dtypes)}: pass {name: array}`);
    }
    const feeds = {};
    for (const [name, value] of Object.entries(named)) {
      const shape = value?.shape;
      if (!Array.isArray(shape)) throw new InputError(`input ${name}: pass {data, shape}`);
      const values = checkFinite(name, flatNumbers(value)); // before a cast hides a NaN as 0
      feeds[name] = { dtype: dtypes[name], shape, data: castTo(dtypes[name], values) };
    }
    return feeds;
  };
}

function isFeedMap(raw, dtypes) {
  return (
    raw !== null &&
    typeof raw === "object" &&
    !("data" in raw) &&
    Object.keys(raw).every((k) => Object.hasOwn(dtypes, k))
  );
}

/**
 * Build the preprocessor for a validated manifest; a package without the block is "none".
 * `files`: the verified package files (a text package's tokenizer). A text preprocessor is
 * async (the tokenizer encodes off the main thread); the others return feeds directly.
 */
function makePreprocessor(manifest, files = new Map()) {
  const spec = manifest.preprocessing ?? { type: "none" };
  if (spec.type === "tensor") return tensorPreprocessor(spec, manifest.inputs);
  if (spec.type === "none") return nonePreprocessor(manifest.inputs);
  if (spec.type === "image") {
    const { imagePreprocessor } = require("./image");
    return imagePreprocessor(spec, targetInput(spec, manifest.inputs));
  }
  if (spec.type === "text") {
    const { textPreprocessor } = require("./text");
    return textPreprocessor(spec, manifest.inputs, files);
  }
  throw new UnsupportedPackageError(
    `preprocessing type ${JSON.stringify(spec.type)} is not supported by the JS runtime ` +
      "(supported: tensor, image, text, none)",
  );
}

/** Softmax of a Float64Array row, in place, shifted by the row max so exp never overflows. */
function softmaxInPlace(row) {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (let k = 0; k < row.length; k++) {
    row[k] = Math.exp(row[k] - max);
    sum += row[k];
  }
  for (let k = 0; k < row.length; k++) row[k] /= sum;
  return row;
}

/** Softmax over one row of numbers, in float64. */
function softmax(row) {
  return Array.from(softmaxInPlace(Float64Array.from(row)));
}

/** Class names: postprocessing.labels, else the top-level labels, else none. */
function packageLabels(manifest) {
  const labels = manifest.postprocessing?.labels ?? manifest.labels ?? [];
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string")) {
    throw new InvalidPackageError("manifest.json: labels must be a list of strings");
  }
  return labels;
}

/** type "classification": top-1 label, index and score per row of one (N, classes) output. */
function classificationPostprocessor(spec, manifest) {
  const output = spec.output ?? manifest.outputs[0].name;
  if (!manifest.outputs.some((o) => o.name === output)) {
    throw new InvalidPackageError(
      `manifest.json: postprocessing.output ${JSON.stringify(output)} is not a model output`,
    );
  }
  const activation = spec.activation ?? "softmax";
  if (activation !== "softmax" && activation !== "none") {
    throw new UnsupportedPackageError(
      `postprocessing.activation ${JSON.stringify(activation)} is not supported ` +
        "(supported: softmax, none)",
    );
  }
  const labels = packageLabels(manifest);

  return (outputs) => {
    const { shape, data } = outputs[output];
    if (shape.length > 2) {
      throw new UnsupportedPackageError(
        `classification expects output ${output} shaped (batch, classes), got (${shape})`,
      );
    }
    const classes = shape[shape.length - 1];
    if (labels.length > 0 && labels.length !== classes) {
      throw new InvalidPackageError(
        `manifest.json: ${labels.length} labels for ${classes} classes in output ${output}`,
      );
    }
    // One float64 buffer; each row of `probabilities` is a view into it.
    const all = toFloat64(data);
    const probabilities = [];
    const indices = [];
    for (let start = 0; start < all.length; start += classes) {
      const row = all.subarray(start, start + classes);
      if (activation === "softmax") softmaxInPlace(row);
      let best = 0; // first maximum wins, as numpy's argmax
      for (let k = 1; k < classes; k++) if (row[k] > row[best]) best = k;
      probabilities.push(row);
      indices.push(best);
    }
    return {
      outputs,
      labels: indices.map((k) => labels[k] ?? String(k)),
      indices,
      probabilities,
      scores: indices.map((k, i) => probabilities[i][k]),
    };
  };
}

/**
 * type "embedding": one float32 vector per text. in_graph (default true): the output is the
 * embedding. Otherwise the (batch, tokens, dim) output is pooled here ("mean" over the tokens the
 * attention_mask feed marks, "cls" the first) and L2-normalised when `normalize` is true.
 */
function embeddingPostprocessor(spec, manifest) {
  const output = spec.output ?? manifest.outputs[0].name;
  if (!manifest.outputs.some((o) => o.name === output)) {
    throw new InvalidPackageError(
      `manifest.json: postprocessing.output ${JSON.stringify(output)} is not a model output`,
    );
  }
  const inGraph = spec.in_graph ?? true;
  const pooling = spec.pooling ?? "none";
  if (!["mean", "cls", "none", null].includes(pooling)) {
    throw new UnsupportedPackageError(
      `postprocessing.pooling ${JSON.stringify(pooling)} is not supported (supported: mean, cls)`,
    );
  }
  return (outputs, feeds = {}) => {
    const { shape, data } = outputs[output];
    const x = toFloat64(data);
    let rows = [];
    if (inGraph || pooling === "none" || pooling === null) {
      const dim = shape[shape.length - 1];
      for (let r = 0; r < x.length / dim; r++) rows.push(x.subarray(r * dim, (r + 1) * dim));
    } else {
      rows = pool(x, shape, pooling, feeds.attention_mask);
    }
    if (!inGraph && spec.normalize) rows = rows.map(unit);
    const embeddings = rows.map((r) => Float32Array.from(r));
    return { outputs, embeddings };
  };
}

function pool(x, [batch, tokens, dim], pooling, mask) {
  if (pooling === "mean" && mask === undefined) {
    throw new UnsupportedPackageError("mean pooling needs the attention_mask feed");
  }
  const rows = [];
  for (let b = 0; b < batch; b++) {
    const row = new Float64Array(dim);
    let weight = 0;
    for (let t = 0; t < (pooling === "cls" ? 1 : tokens); t++) {
      const m = pooling === "cls" ? 1 : Number(mask.data[b * tokens + t]);
      weight += m;
      for (let d = 0; d < dim; d++) row[d] += m * x[(b * tokens + t) * dim + d];
    }
    rows.push(row.map((v) => v / Math.max(weight, 1e-9)));
  }
  return rows;
}

function unit(row) {
  const norm = Math.sqrt(row.reduce((s, v) => s + v * v, 0));
  return row.map((v) => v / Math.max(norm, 1e-12));
}

/** Build the postprocessor for a validated manifest; a package without the block is "none". */
function makePostprocessor(manifest) {
  const spec = manifest.postprocessing ?? { type: "none" };
  if (spec.type === "classification") return classificationPostprocessor(spec, manifest);
  if (spec.type === "embedding") return embeddingPostprocessor(spec, manifest);
  if (spec.type === "none") return (outputs) => ({ outputs });
  throw new UnsupportedPackageError(
    `postprocessing type ${JSON.stringify(spec.type)} is not supported ` +
      "(supported: classification, embedding, none)",
  );
}

module.exports = {
  checkFinite,
  makePostprocessor,
  makePreprocessor,
  packageLabels,
  softmax,
  typedArrayFor,
};
