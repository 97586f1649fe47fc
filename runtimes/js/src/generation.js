"use strict";
// Greedy decoding with the KV cache of a language-model package (task text-generation, the
// manifest's `generation` block, schema 1.2), the same loop as the Python runtime's
// edgepack_runtime/generation.py: prefill the prompt once (past of length 0), then one step per
// token on the cache the last step returned (`present.{i}.*` -> `past_key_values.{i}.*`).

const { InputError, SampleMismatchError, UnsupportedPackageError } = require("./errors");
const { parseJson } = require("./manifest");

const PAST = "past_key_values.";
const PRESENT = "present.";

class Decoder {
  /** `pkg`: a loaded Package whose model takes input_ids and past_key_values.* inputs. */
  constructor(pkg) {
    const spec = pkg.manifest.generation;
    if (!spec) throw new UnsupportedPackageError(`${pkg.name}: not a language-model package`);
    const inputs = pkg._session.inputNames;
    this.pkg = pkg;
    this.pasts = inputs.filter((n) => n.startsWith(PAST));
    if (!inputs.includes("input_ids") || this.pasts.length === 0) {
      throw new UnsupportedPackageError(`${pkg.name}: the model has no KV-cache inputs`);
    }
    this.hasMask = inputs.includes("attention_mask");
    this.hasPositions = inputs.includes("position_ids");
    this.kvHeads = spec.kv_cache.kv_heads;
    this.headDim = spec.kv_cache.head_dim;
    this.stopIds = new Set(spec.eos_token_ids ?? []);
    this.reset();
  }

  reset() {
    const empty = { dtype: "float32", shape: [1, this.kvHeads, 0, this.headDim], data: new Float32Array(0) };
    this.cache = Object.fromEntries(this.pasts.map((n) => [n, empty]));
    this.length = 0;
  }

  /** Run `ids` after the cached positions; return the argmax of the last position's logits. */
  async step(ids) {
    const n = ids.length;
    const total = this.length + n;
    const int64 = (values, shape) => ({ dtype: "int64", shape, data: BigInt64Array.from(values, BigInt) });
    const feeds = { input_ids: int64(ids, [1, n]), ...this.cache };
    if (this.hasMask) feeds.attention_mask = int64(new Array(total).fill(1), [1, total]);
    if (this.hasPositions) {
      feeds.position_ids = int64(Array.from({ length: n }, (_, i) => this.length + i), [1, n]);
    }
    const out = await this.pkg.run(feeds);
    for (const name of this.pasts) this.cache[name] = out[PRESENT + name.slice(PAST.length)];
    this.length = total;
    const { shape, data } = out.logits;
    const vocab = shape[shape.length - 1];
    const last = data.length - vocab;
    let best = 0;
    for (let k = 1; k < vocab; k++) if (data[last + k] > data[last + best]) best = k;
    return best; // ties: the lowest id, as numpy's argmax
  }

  /** The greedy continuation of `prompt` (token ids): up to `maxNewTokens`, ends before EOS
   * unless `stopAtEos` is false. */
  async greedy(prompt, maxNewTokens, stopAtEos = true) {
    if (prompt.length === 0) throw new InputError("the prompt has no tokens");
    this.reset();
    const out = [];
    let token = await this.step(prompt);
    for (let i = 0; i < maxNewTokens; i++) {
      if (stopAtEos && this.stopIds.has(token)) break;
      out.push(token);
      if (i + 1 < maxNewTokens) token = await this.step([token]);
    }
    return out;
  }
}

/** Replay the package's recorded greedy generation token for token (throws on a difference). */
async function replayGeneration(pkg) {
  const spec = pkg.manifest.generation;
  const bytes = pkg._files.get(spec.sample);
  if (bytes === undefined) throw new UnsupportedPackageError(`${spec.sample}: not in the package`);
  const sample = parseJson(bytes, spec.sample);
  const decoder = new Decoder(pkg);
  let tokens = 0;
  for (let i = 0; i < sample.prompt_ids.length; i++) {
    const got = await decoder.greedy(sample.prompt_ids[i], sample.max_new_tokens, sample.stops_at_eos ?? true);
    const want = sample.generated_ids[i];
    const at = got.findIndex((t, j) => t !== want[j]);
    if (at >= 0 || got.length !== want.length) {
      const j = at >= 0 ? at : Math.min(got.length, want.length);
      throw new SampleMismatchError(
        `generation sample ${i}: greedy decoding differs from the recorded tokens at position ${j} ` +
          `(got ${got.slice(j, j + 3)}, recorded ${want.slice(j, j + 3)})`,
      );
    }
    tokens += got.length;
  }
  return { prompts: sample.prompt_ids.length, tokens };
}

module.exports = { Decoder, replayGeneration };
