"use strict";
// type "image" preprocessing: image files (or decoded pixels) -> the model's tensor, step for
// step as docs/package-format.md ("Image packages") specifies and the Python runtime computes:
//
//   decode (8-bit, to RGB) -> channel order -> resize -> centre crop -> scale, mean, std -> layout
//
// Resize is Pillow's 8-bit resampling: separable filters, horizontal pass first, coefficients
// in 22-bit fixed point, each pass rounded to 8 bits. Every intermediate is an integer below
// 2^53, so float64 arithmetic gives the exact numbers C's int arithmetic gives. Decoding: pngjs
// and jpeg-js (pure JS) in Node; in a browser pass ImageData ({width, height, data} RGBA).

const { InputError, InvalidPackageError } = require("./errors");
const { MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS } = require("./limits");

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

const FILTERS = {
  bilinear: {
    support: 1.0,
    fn: (x) => {
      const t = Math.abs(x);
      return t < 1.0 ? 1.0 - t : 0.0;
    },
  },
  bicubic: {
    support: 2.0,
    fn: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1.0) return ((a + 2.0) * t - (a + 3.0)) * t * t + 1;
      if (t < 2.0) return (((t - 5) * t + 8) * t - 4) * a;
      return 0.0;
    },
  },
};

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output, first index and weights. */
function coefficients(inSize, outSize, interpolation) {
  const filter = FILTERS[interpolation];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const starts = new Int32Array(outSize);
  const counts = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      w[x] = filter.fn((x + xmin - center + 0.5) * (1.0 / filterscale));
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0.0 ? w[x] / ww : w[x];
      weights[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    starts[xx] = xmin;
    counts[xx] = xmax;
  }
  return { starts, counts, weights, ksize };
}

function clip8(acc) {
  const v = Math.floor(acc / ONE); // C's arithmetic >> on the int accumulator
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One pass over interleaved RGB bytes: along x (horizontal) or y (vertical). */
function resamplePass(src, width, height, outSize, interpolation, horizontal) {
  const c = coefficients(horizontal ? width : height, outSize, interpolation);
  const outW = horizontal ? outSize : width;
  const outH = horizontal ? height : outSize;
  const out = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = horizontal ? x : y;
      const start = c.starts[o];
      const count = c.counts[o];
      for (let ch = 0; ch < 3; ch++) {
        let acc = HALF;
        for (let t = 0; t < count; t++) {
          const i = horizontal ? (y * width + start + t) * 3 : ((start + t) * width + x) * 3;
          acc += src[i + ch] * c.weights[o * c.ksize + t];
        }
        out[(y * outW + x) * 3 + ch] = clip8(acc);
      }
    }
  }
  return out;
}

/** RGB pixels {width, height, data} -> (height, width), as Pillow's Image.resize does. */
function resize(image, height, width, interpolation) {
  let { data } = image;
  let w = image.width;
  const h = image.height;
  if (width !== w) {
    data = resamplePass(data, w, h, width, interpolation, true);
    w = width;
  }
  if (height !== h) data = resamplePass(data, w, h, height, interpolation, false);
  return { width, height, data };
}

const MAX_RESIZED_PIXELS = 2 ** 24; // a resize never makes more (a 1x20000 strip would)

function resizedSize(height, width, spec) {
  let out = [spec.height, spec.width];
  if (spec.shorter !== undefined) {
    const s = spec.shorter;
    out =
      height <= width
        ? [s, Math.floor((s * width) / height)]
        : [Math.floor((s * height) / width), s];
  }
  if (out[0] * out[1] > MAX_RESIZED_PIXELS) {
    const cap = MAX_RESIZED_PIXELS.toLocaleString("en-US");
    throw new InputError(
      `a ${width}x${height} image resizes to ${out[1]}x${out[0]}, over the ${cap}-pixel cap ` +
        "(an extreme aspect ratio): crop it first",
    );
  }
  return out;
}

/** Refuse a PNG whose IHDR (width at byte 16, height at 20) is empty or a decompression bomb,
 * before pngjs allocates its pixels. */
function checkPixels(width, height, where, maxPixels) {
  if (width === 0 || height === 0) {
    throw new InputError(`${where}: an empty (${width}x${height}) image`);
  }
  if (width * height > maxPixels) {
    throw new InputError(
      `${where}: ${width}x${height} pixels is over the ${maxPixels}-pixel limit ` +
        "(a decompression bomb?)",
    );
  }
}

/** torchvision's CenterCrop offset: round((size - crop) / 2), halves to even. */
function cropOffset(size, crop) {
  const d = size - crop;
  const half = Math.floor(d / 2);
  return half + (d % 2 && half % 2 ? 1 : 0);
}

function centreCrop(image, height, width) {
  if (height > image.height || width > image.width) {
    throw new InputError(
      `image of ${image.width}x${image.height} after resize is smaller than the ` +
        `${width}x${height} centre crop`,
    );
  }
  const top = cropOffset(image.height, height);
  const left = cropOffset(image.width, width);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * 3;
    out.set(image.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, data: out };
}

/** RGBA or gray bytes -> RGB (alpha dropped, gray repeated). */
function toRgb(width, height, data, channels) {
  if (channels === 3) return { width, height, data: Uint8Array.from(data) };
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = data[i * channels + (channels >= 3 ? ch : 0)];
  }
  return { width, height, data: out };
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];

/**
 * PNG/JPEG bytes -> RGB pixels: 8-bit, no EXIF rotation, no colour management. The size in the
 * image's header is checked against `maxPixels` (a user's image: MAX_IMAGE_PIXELS; a package's
 * sample: MAX_SAMPLE_IMAGE_PIXELS) before anything is decoded.
 */
function decode(bytes, where = "image", maxPixels = MAX_IMAGE_PIXELS) {
  const buf = Buffer.from(bytes.buffer ?? bytes, bytes.byteOffset ?? 0, bytes.byteLength);
  try {
    if (PNG_MAGIC.every((b, i) => buf[i] === b)) {
      if (buf.length >= 24) checkPixels(buf.readUInt32BE(16), buf.readUInt32BE(20), where, maxPixels);
      const { PNG } = require("pngjs");
      const meta = PNG.sync.read(buf, { skipRescale: true });
      if (meta.depth === 16) throw new InputError(`${where}: 16-bit images are not supported`);
      return toRgb(meta.width, meta.height, meta.data, 4);
    }
    if (buf[0] === 0xff && buf[1] === 0xd8) {
      const jpeg = require("jpeg-js");
      // jpeg-js refuses a frame over maxResolutionInMP from its header, before decoding.
      const limits = { maxResolutionInMP: maxPixels / 1e6, maxMemoryUsageInMB: 4096 };
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, ...limits });
      return toRgb(img.width, img.height, img.data, img.data.length / (img.width * img.height));
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`${where}: cannot decode the image (${err.message})`);
  }
  throw new InputError(`${where}: not a PNG or JPEG image`);
}

/** An image argument -> RGB pixels: a file path, file bytes, or {width, height, data}. */
function pixelsOf(image, where, maxPixels = MAX_IMAGE_PIXELS) {
  if (typeof image === "string") {
    let bytes;
    try {
      // a FIFO or device: refused; a file over MAX_IMAGE_FILE_BYTES: refused unread
      bytes = require("./source").readRegularFile(image, MAX_IMAGE_FILE_BYTES);
    } catch (err) {
      throw new InputError(`${image}: cannot read the image (${err.code ?? err.message})`);
    }
    return decode(bytes, image, maxPixels);
  }
  if (image instanceof Uint8Array || image instanceof ArrayBuffer) {
    return decode(image instanceof ArrayBuffer ? new Uint8Array(image) : image, where, maxPixels);
  }
  if (image && Number.isInteger(image.width) && Number.isInteger(image.height) && image.data) {
    const channels = image.data.length / (image.width * image.height);
    if (channels !== 3 && channels !== 4) {
      throw new InputError(`${where}: pixels must be RGB or RGBA bytes (ImageData)`);
    }
    return toRgb(image.width, image.height, image.data, channels);
  }
  throw new InputError(`${where}: pass an image file path, its bytes or {width, height, data}`);
}

function positive(value, what) {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidPackageError(`manifest.json: preprocessing.${what} must be a positive integer`);
  }
}

function checkSpec(spec) {
  const out = {
    channelOrder: spec.channel_order ?? "RGB",
    resize: spec.resize ?? null,
    crop: spec.crop ?? null,
    dtype: spec.dtype ?? "float32",
    layout: spec.layout ?? "NCHW",
  };
  const bad = (what) => new InvalidPackageError(`manifest.json: preprocessing.${what}`);
  if (!["RGB", "BGR"].includes(out.channelOrder)) throw bad("channel_order must be RGB or BGR");
  if (!["NCHW", "NHWC"].includes(out.layout)) throw bad("layout must be NCHW or NHWC");
  if (!["float32", "uint8"].includes(out.dtype)) throw bad("dtype must be float32 or uint8");
  if (out.resize !== null) {
    if (!Object.hasOwn(FILTERS, out.resize.interpolation)) {
      throw bad("resize.interpolation must be bilinear or bicubic");
    }
    if (out.resize.shorter !== undefined) positive(out.resize.shorter, "resize.shorter");
    else {
      positive(out.resize.height, "resize.height");
      positive(out.resize.width, "resize.width");
    }
  }
  if (out.crop !== null) {
    positive(out.crop.height, "crop.height");
    positive(out.crop.width, "crop.width");
  }
  if (out.dtype === "float32") {
    out.scale = spec.scale ?? 1.0;
    if (typeof out.scale !== "number" || !Number.isFinite(out.scale)) {
      throw bad("scale must be a finite number");
    }
    for (const [key, fallback] of [
      ["mean", 0.0],
      ["std", 1.0],
    ]) {
      const v = spec[key] ?? [fallback, fallback, fallback];
      if (!Array.isArray(v) || v.length !== 3 || !v.every((n) => Number.isFinite(n))) {
        throw bad(`${key} must be a list of 3 finite numbers (one per channel)`);
      }
      out[key] = v;
    }
    if (out.std.some((s) => s === 0)) throw bad("std must not be 0");
  }
  return out;
}

/** RGB pixels -> the tensor values of one image (Float32Array or Uint8Array), per the spec. */
function applySpec(pixels, s) {
  let img = pixels;
  if (s.channelOrder === "BGR") {
    const d = Uint8Array.from(img.data);
    for (let i = 0; i < d.length; i += 3) [d[i], d[i + 2]] = [img.data[i + 2], img.data[i]];
    img = { ...img, data: d };
  }
  if (s.resize) {
    const [h, w] = resizedSize(img.height, img.width, s.resize);
    img = resize(img, h, w, s.resize.interpolation);
  }
  if (s.crop) img = centreCrop(img, s.crop.height, s.crop.width);
  const { width, height, data } = img;
  const n = width * height;
  const out = s.dtype === "uint8" ? new Uint8Array(n * 3) : new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < 3; ch++) {
      const p = data[i * 3 + ch];
      const v = s.dtype === "uint8" ? p : (p * s.scale - s.mean[ch]) / s.std[ch];
      out[s.layout === "NCHW" ? ch * n + i : i * 3 + ch] = v;
    }
  }
  const shape = s.layout === "NCHW" ? [3, height, width] : [height, width, 3];
  return { shape, data: out };
}

/** type "image": one image or a list of them -> {input: {dtype, shape, data}}. */
function imagePreprocessor(spec, target) {
  const s = checkSpec(spec);
  // maxPixels: MAX_SAMPLE_IMAGE_PIXELS for a package's own sample images (the memory budget).
  const one = (image, where = "image", maxPixels = MAX_IMAGE_PIXELS) =>
    applySpec(pixelsOf(image, where, maxPixels), s);
  const pre = (raw) => {
    const images = Array.isArray(raw) ? raw : [raw];
    if (images.length === 0) throw new InputError("pass at least one image");
    const tensors = images.map((im, i) => one(im, `image ${i}`));
    const per = tensors[0].data.length;
    const data = s.dtype === "uint8" ? new Uint8Array(per * tensors.length) : new Float32Array(per * tensors.length);
    tensors.forEach((t, i) => {
      if (t.data.length !== per) throw new InputError("images of one batch must give one shape");
      data.set(t.data, i * per);
    });
    return { [target.name]: { dtype: s.dtype, shape: [tensors.length, ...tensors[0].shape], data } };
  };
  pre.one = one;
  pre.input = target.name;
  return pre;
}

module.exports = { coefficients, cropOffset, decode, imagePreprocessor, resize };
