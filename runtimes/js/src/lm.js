"use strict";
// Text generation from strings with a language-model package (task text-generation): the prompt
// (or chat messages through the package's chat template) -> ids -> greedy decoding with the KV
// cache (generation.js) -> text pieces as they arrive, ending at an EOS id, max_new_tokens, the
// context length, or before a stop string. The loop of the Python runtime's lm.py.

const { InputError, InvalidPackageError, UnsupportedPackageError } = require("./errors");
const { Decoder } = require("./generation");
const { ChatTemplate, checkText, loadTokenizer, specialTokens } = require("./text");

class LanguageModel {
  /** `pkg`: a loaded Package with a generation block. */
  constructor(pkg) {
    const spec = pkg.manifest.generation;
    if (!spec) throw new UnsupportedPackageError(`${pkg.name}: not a language-model package`);
    this.pkg = pkg;
    this.spec = spec;
    this.decoder = new Decoder(pkg);
    this.stopStrings = (spec.stop_strings ?? []).filter((s) => typeof s === "string" && s);
    this.contextLength = spec.context_length ?? null;
    this._tokenizer = null;
    this._chat = null;
    this.generated = []; // the token ids of the last stream, as they arrive
  }

  get tokenizer() {
    if (this._tokenizer === null) {
      const path = this.spec.tokenizer ?? "tokenizer.json";
      this._tokenizer = loadTokenizer(this.pkg._files, path, "generation.tokenizer");
    }
    return this._tokenizer;
  }

  /** The package's chat template (generation.chat_template names its file). */
  get chatTemplate() {
    if (this._chat === null) {
      const path = this.spec.chat_template;
      if (typeof path !== "string") {
        throw new UnsupportedPackageError(
          "this package has no chat template (generation.chat_template): give a plain prompt",
        );
      }
      const bytes = this.pkg._files.get(path);
      if (bytes === undefined) {
        throw new InvalidPackageError(`manifest.json: generation.chat_template ${path} not found`);
      }
      this._chat = new ChatTemplate(Buffer.from(bytes).toString("utf8"), specialTokens(this.pkg._files));
    }
    return this._chat;
  }

  /** A plain prompt's ids, with the special tokens the tokenizer adds (a BOS, say). */
  async encode(prompt, addSpecialTokens = true) {
    checkText(prompt, "prompt");
    return (await this.tokenizer.encode(prompt, null, { addSpecialTokens })).getIds();
  }

  /**
   * The ids generation starts from: a plain prompt encoded, or chat messages (a string with
   * chat true is one user message) rendered by the chat template with the assistant's turn
   * opened, then encoded as it is (the template writes any special tokens itself).
   */
  async promptIds(prompt, chat = false) {
    if (typeof prompt === "string" && !chat) return this.encode(prompt);
    const messages = typeof prompt === "string" ? [{ role: "user", content: prompt }] : prompt;
    const text = this.chatTemplate.render(messages, true);
    return (await this.tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
  }

  /** Greedy token ids after `prompt` (ids): stops before an EOS id, after maxNewTokens, or at
   * the context length. */
  async *generateIds(prompt, maxNewTokens) {
    if (prompt.length === 0) throw new InputError("the prompt has no tokens: give some text (or a BOS token)");
    const n = this.contextLength;
    if (n && prompt.length >= n) {
      throw new InputError(
        `the prompt is ${prompt.length.toLocaleString("en-US")} tokens but the model's context is ` +
          `${n.toLocaleString("en-US")} positions (prompt and generated tokens together): shorten the prompt`,
      );
    }
    const d = this.decoder;
    d.reset();
    let token = await d.step(prompt);
    for (let i = 0; i < maxNewTokens; i++) {
      if (d.stopIds.has(token)) return;
      yield token;
      if (n && d.length >= n) return;
      if (i + 1 < maxNewTokens) token = await d.step([token]);
    }
  }

  /**
   * Text pieces as tokens arrive: each is the decoded text's new suffix (held back while it
   * ends in an incomplete UTF-8 sequence); ends at an EOS id or before a stop string (the
   * package's generation.stop_strings and options.stop).
   */
  async *stream(prompt, { maxNewTokens, stop = [], chat = false, temperature } = {}) {
    if (temperature !== undefined && temperature !== 0) {
      throw new TypeError("the Node runtime decodes greedily: leave temperature unset or 0");
    }
    const max = maxNewTokens ?? this.spec.defaults?.max_new_tokens ?? 64;
    const stops = [...this.stopStrings, ...stop];
    const ids = [];
    this.generated = ids;
    let shown = "";
    for await (const token of this.generateIds(await this.promptIds(prompt, chat), max)) {
      ids.push(token);
      const text = await this.tokenizer.decode(ids, true);
      if (text.endsWith("\ufffd")) continue;
      const hits = stops.filter((s) => s && text.includes(s)).map((s) => text.indexOf(s));
      if (hits.length > 0) {
        const cut = Math.min(...hits);
        if (cut > shown.length) yield text.slice(shown.length, cut);
        return;
      }
      if (text.length > shown.length && text.startsWith(shown)) yield text.slice(shown.length);
      shown = text;
    }
  }
}

module.exports = { LanguageModel };
