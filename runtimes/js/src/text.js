"use strict";
// Text in, for every text package: the checks each runtime makes on a string, the package's
// tokenizer.json through Hugging Face's `tokenizers` (the Rust library the Python runtime uses,
// in its Node binding: the same ids for the same text), the manifest's text rule, and chat
// templates through @huggingface/jinja (Hugging Face's Jinja for chat templates).
//
// The rule (docs/runtimes.md, "Text and chat"): a text is Unicode without NUL; it is encoded
// with the tokenizer's special tokens; truncation to max_length drops the text's last tokens and
// keeps the special tokens; a batch pads to its longest text (or the model's fixed length).

const { InputError, InvalidPackageError, UnsupportedPackageError } = require("./errors");

const oneLine = (err) => String(err?.message ?? err).split(/\s+/).join(" ").trim();

/**
 * `text` if every runtime can take it, else InputError: not a string, not valid Unicode (a lone
 * surrogate: no UTF-8 encodes it), or holding NUL (a C string ends there). Positions are UTF-8
 * byte offsets, as the Python and C++ runtimes report them.
 */
function checkText(text, where = "text") {
  if (typeof text !== "string") {
    throw new InputError(`${where}: expected a string, got ${text === null ? "null" : typeof text}`);
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const high = c >= 0xd800 && c <= 0xdbff;
    const next = text.charCodeAt(i + 1);
    if (high && next >= 0xdc00 && next <= 0xdfff) {
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const at = Buffer.byteLength(text.slice(0, i), "utf8");
      throw new InputError(`${where}: not valid UTF-8 at byte ${at}: pass Unicode text`);
    }
  }
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    const at = Buffer.byteLength(text.slice(0, nul), "utf8");
    throw new InputError(`${where}: contains NUL (U+0000) at byte ${at}: remove it`);
  }
  return text;
}

/** Offset of the first ill-formed UTF-8 sequence in `bytes` (Unicode's table 3-7), or -1. */
function utf8ErrorAt(bytes) {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    let n = 0;
    let lo = 0x80;
    let hi = 0xbf;
    if (b < 0x80) n = 0;
    else if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b === 0xe0) lo = 0xa0; // no overlong forms
      if (b === 0xed) hi = 0x9f; // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f; // nothing past U+10FFFF
    } else return i;
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k];
      const [min, max] = k === 1 ? [lo, hi] : [0x80, 0xbf];
      if (c === undefined || c < min || c > max) return i;
    }
    i += n + 1;
  }
  return -1;
}

/** UTF-8 bytes (a file's, an app's Buffer) as a checked string, with the other runtimes' wording. */
function decodeUtf8(bytes, where = "text") {
  const at = utf8ErrorAt(bytes);
  if (at >= 0) throw new InputError(`${where}: not valid UTF-8 at byte ${at}: pass Unicode text`);
  return checkText(Buffer.from(bytes).toString("utf8"), where);
}

/** The package file `path` as a tokenizers.Tokenizer with no padding and no truncation. */
function loadTokenizer(files, path, where) {
  let tokenizers;
  try {
    tokenizers = require("tokenizers");
  } catch (err) {
    throw new UnsupportedPackageError(`text needs the npm package tokenizers (${oneLine(err)})`);
  }
  const bytes = files.get(path);
  if (bytes === undefined) {
    throw new InvalidPackageError(`manifest.json: ${where} ${JSON.stringify(path)} not found`);
  }
  let tokenizer;
  try {
    tokenizer = tokenizers.Tokenizer.fromString(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw new InvalidPackageError(`${path}: not a valid tokenizer (${oneLine(err)})`);
  }
  tokenizer.disablePadding();
  tokenizer.disableTruncation();
  return tokenizer;
}

function parseJsonFile(files, path) {
  const bytes = files.get(path);
  if (bytes === undefined) return {};
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw new InvalidPackageError(`${path}: not valid JSON (${oneLine(err)})`);
  }
}

/** bos_token, eos_token, ... as strings from tokenizer_config.json (a chat template may use them). */
function specialTokens(files) {
  const config = parseJsonFile(files, "tokenizer_config.json");
  const out = {};
  for (const key of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
    const value = typeof config[key] === "object" ? config[key]?.content : config[key];
    if (typeof value === "string") out[key] = value;
  }
  return out;
}

/** A chat is a non-empty list of {role, content} with checked text. */
function checkMessages(messages) {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new InputError('a chat is a non-empty list of {"role": ..., "content": ...} messages');
  }
  messages.forEach((m, i) => {
    if (m === null || typeof m !== "object" || typeof m.role !== "string") {
      throw new InputError(`message ${i}: expected {"role": str, "content": str}`);
    }
    checkText(m.content, `message ${i} content`);
  });
}

/** A package's chat template (Jinja), rendered with the tokenizer's special tokens as variables. */
class ChatTemplate {
  constructor(source, tokens) {
    const { Template } = require("@huggingface/jinja");
    try {
      this._template = new Template(source);
    } catch (err) {
      throw new InvalidPackageError(`chat template: not valid Jinja (${oneLine(err)})`);
    }
    this.tokens = tokens;
  }

  /** The prompt text for `messages` ([{role, content}, ...]). */
  render(messages, addGenerationPrompt = true) {
    checkMessages(messages);
    try {
      return this._template.render({
        ...this.tokens,
        messages,
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (err) {
      throw new InputError(`chat template: ${oneLine(err)}`);
    }
  }
}

const FIELDS = { input_ids: "getIds", attention_mask: "getAttentionMask", token_type_ids: "getTypeIds" };

/**
 * type "text": strings -> int64 feeds by the manifest's rule (max_length, or the model's fixed
 * sequence length; truncation; pad_id, else tokenizer.json's, else 0). Returns an async function.
 */
function textPreprocessor(spec, inputs, files) {
  const unknown = inputs.map((i) => i.name).filter((n) => !Object.hasOwn(FIELDS, n));
  if (unknown.length > 0) {
    throw new UnsupportedPackageError(
      `text preprocessing can feed ${Object.keys(FIELDS)}, not model inputs ${unknown}`,
    );
  }
  const path = spec.tokenizer ?? "tokenizer.json";
  const baked = parseJsonFile(files, path).padding ?? {};
  const tokenizer = loadTokenizer(files, path, "preprocessing.tokenizer");
  const fixed = [...new Set(inputs.map((i) => i.shape[1]).filter(Number.isInteger))];
  const length = fixed.length === 1 ? fixed[0] : (spec.max_length ?? 128);
  if (spec.truncation ?? true) tokenizer.setTruncation(length);
  const padding = {
    padId: spec.pad_id ?? baked.pad_id ?? 0,
    padToken: spec.pad_token ?? baked.pad_token ?? "[PAD]",
  };
  if (fixed.length === 1) padding.maxLength = length;
  tokenizer.setPadding(padding);

  return async (raw) => {
    const texts = typeof raw === "string" ? [raw] : raw;
    if (!Array.isArray(texts) || texts.length === 0) {
      throw new InputError("input must be a string or a non-empty list of strings");
    }
    texts.forEach((t, i) => checkText(t, typeof raw === "string" ? "text" : `text ${i}`));
    const encodings = await tokenizer.encodeBatch(texts);
    const feeds = {};
    for (const { name, dtype } of inputs) {
      const rows = encodings.map((e) => e[FIELDS[name]]());
      const flat = rows.flat();
      const data = dtype === "int64" ? BigInt64Array.from(flat, BigInt) : Int32Array.from(flat);
      feeds[name] = { dtype, shape: [rows.length, rows[0].length], data };
    }
    return feeds;
  };
}

module.exports = {
  ChatTemplate,
  checkText,
  decodeUtf8,
  loadTokenizer,
  specialTokens,
  textPreprocessor,
  utf8ErrorAt,
};
