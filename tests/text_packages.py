"""Tiny text and language-model packages built on the fly for tests/runtimes/, without the
packager: a sentence embedder over a WordPiece tokenizer (BERT's normaliser, pre-tokenizer and
[CLS]/[SEP] template, or MiniLM's own tokenizer.json), and a one-layer "bigram" decoder with a
KV cache over the tiny-lm byte-level BPE with a Qwen-style chat template, whose greedy reply is
known in advance. Each records samples every runtime must replay."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

# A ChatML chat template written the way Qwen2.5's is (whitespace control, a default system
# turn, attribute access on messages, loop.first), without the tool-calling branches.
QWEN_STYLE_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\nYou are a tiny assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message.role == 'user' or (message.role == 'system' and not loop.first) "
    "or message.role == 'assistant' %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)
# Strings every runtime must tokenize alike: empty, emoji (ZWJ sequences, flags, skin tones),
# combining marks, control characters, CJK (extension B too), case mappings that differ by
# context or Unicode version, special tokens typed as text, a word too long for WordPiece, text
# longer than any max_length, unassigned and private-use code points.
HOSTILE_TEXTS = [
    "",
    "Hello world!",
    "Un-aff-able, CAFÉ naïve résumé e\u0301",
    "emoji 😀 👍🏽 👨\u200d👩\u200d👧 🏳️\u200d🌈 🇫🇷",
    "tabs\tand\nnew\r\nlines \u2028 \u3000 \u00a0",
    "ctrl \x01\x07\x1b\x7f\x85 chars \u200b\ufeff\u00ad",
    "中文 日本語 한국어 𠀀𠀁 a𠀀b",
    "İstanbul ΣΊΣΥΦΟΣ straße Ǆ ẞ ﬁ ＦＵＬＬ",
    "[CLS] in the text [SEP] <|im_end|> <|endoftext|>",
    "x" * 3000,
    "word " * 400,
    "\u0378 unassigned \U000e0001 tag \ue000 private \ufffd",
]
# Bytes no runtime takes as text: truncated, surrogate, past U+10FFFF, overlong, NUL.
HOSTILE_BYTES = [b"caf\xc3", b"ab\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"a\x00b"]
REPLY = " the cat sat today."  # what the bigram decoder answers after "<|im_start|>assistant\n"
STOP_STRING = " today"  # the package's generation config stops before it


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _model(nodes, inputs, outputs, weights) -> bytes:
    graph = helper.make_graph(
        nodes,
        "tiny",
        inputs,
        outputs,
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _manifest(task: str, inputs, outputs, pre, post, samples) -> dict:
    return {
        "schema_version": "1.3",
        "name": "tiny-text",
        "version": "0.1.0",
        "task": task,
        "created": "2026-11-28T12:00:00Z",
        "model": "model.onnx",
        "inputs": inputs,
        "outputs": outputs,
        "preprocessing": pre,
        "postprocessing": post,
        "files": {},
        "samples": {"atol": 1e-5, "rtol": 1e-4, **samples},
    }


def wordpiece_tokenizer_json() -> str:
    """A BERT-shaped WordPiece tokenizer.json: lowercasing, accent-stripping BertNormalizer,
    BertPreTokenizer, [CLS] $A [SEP], a vocabulary with ## pieces and CJK characters."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat"]
    words += ["un", "##aff", "##able", "hello", "world", "cafe", "naive", "!", ",", ".", "'"]
    words += ["e", "a", "b", "x", "##x", "σ", "##ς", "##σ", "i", "##stan", "##bul", "中", "文"]
    words += ["emoji", "tab", "##s", "and", "new", "##line", "word", "ctrl", "chars", "𠀀"]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    return tok.to_str()


def build_embedder(
    tokenizer_json: str, texts: list[str], max_length: int = 16, dim: int = 8, in_graph=True
):
    """(files, manifest) of a feature-extraction package: ids -> word + type embeddings ->
    mean over the attention mask (in the graph) -> (batch, dim); samples are `texts`. With
    in_graph False the model stops at the token vectors (batch, sequence, dim) and the runtime
    pools them: mean over the mask, then L2."""
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_str(tokenizer_json).get_vocab_size()
    rng = np.random.default_rng(0)
    weights = {
        "E": rng.normal(size=(vocab, dim)).astype(np.float32),
        "T": rng.normal(size=(2, dim)).astype(np.float32),
        "axis": np.array([1], np.int64),
    }
    ids = ["input_ids", "attention_mask", "token_type_ids"]
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["w"]),
        helper.make_node("Gather", ["T", "token_type_ids"], ["t"]),
        helper.make_node("Add", ["w", "t"], ["h"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "minus1"], ["m3"]),
        helper.make_node("Mul", ["h", "m3"], ["hm"]),
        helper.make_node("ReduceSum", ["hm", "axis"], ["s"], keepdims=0),
        helper.make_node("ReduceSum", ["m3", "axis"], ["n"], keepdims=0),
        helper.make_node("Div", ["s", "n"], ["sentence_embedding"]),
    ]
    weights["minus1"] = np.array([-1], np.int64)
    out_name, out_shape = "sentence_embedding", ["batch", dim]
    if not in_graph:
        nodes = [*nodes[:3], helper.make_node("Identity", ["h"], ["token_embeddings"])]
        out_name, out_shape = "token_embeddings", ["batch", "sequence", dim]
        del weights["axis"], weights["minus1"]
    model = _model(
        nodes,
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in ids],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        weights,
    )
    tok = Tokenizer.from_str(tokenizer_json)
    tok.no_padding()
    tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(texts)
    feeds = {
        "input_ids": np.array([e.ids for e in enc], np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], np.int64),
    }
    (emb,) = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    pre = {
        "type": "text",
        "tokenizer": "tokenizer.json",
        "max_length": max_length,
        "truncation": True,
        "padding": "longest",
        "pad_id": 0,
        "pad_token": "[PAD]",
        "inputs": ids,
    }
    post = {"type": "embedding", "output": out_name, "in_graph": in_graph}
    post |= {"pooling": "mean", "normalize": not in_graph}
    samples = {
        "count": len(texts),
        "raw": "samples/raw.json",
        "inputs": {n: f"samples/{n}.npy" for n in ids},
        "outputs": {out_name: f"samples/{out_name}.npy"},
    }
    io_spec = [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in ids]
    out_spec = [{"name": out_name, "dtype": "float32", "shape": out_shape}]
    manifest = _manifest("feature-extraction", io_spec, out_spec, pre, post, samples)
    files = {
        "model.onnx": model,
        "tokenizer.json": tokenizer_json.encode(),
        "samples/raw.json": json.dumps(texts, ensure_ascii=False).encode(),
        f"samples/{out_name}.npy": _npy(emb),
        **{f"samples/{n}.npy": _npy(v) for n, v in feeds.items()},
    }
    return files, manifest


def chat_tokenizer(dest: Path) -> Path:
    """The tiny-lm byte-level BPE (builtin_lm.train_tokenizer on tiny_lm_texts, as
    tiny_causal_lm_folder makes it, with room for every merge the texts have) with ChatML's
    <|im_start|>/<|im_end|> as special tokens, saved in `dest` with its tokenizer_config.json."""
    from tiny_models import tiny_lm_texts
    from tokenizers import AddedToken

    from packager.sources.builtin_lm import train_tokenizer

    tok = train_tokenizer(iter(tiny_lm_texts(300, seed=99)), 600, dest)
    tok.add_special_tokens([AddedToken(t, special=True) for t in ("<|im_start|>", "<|im_end|>")])
    tok.save(str(dest / "tokenizer.json"))
    return dest


def build_chat_lm(folder: Path, context: int = 256):
    """(files, manifest) of a text-generation package over `folder`'s tokenizer: a one-layer
    decoder whose logits depend only on the current token (a bigram table) and whose KV cache is
    the token's embedding appended each step. After "<|im_start|>assistant\\n" it answers REPLY
    then <|im_end|>; elsewhere it counts up through the vocabulary."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    vocab = tok.get_vocab_size()
    im_end, eos = tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")
    table = np.zeros((vocab, vocab), np.float32)
    for t in range(vocab):  # t -> the next id that is no stop token
        nxt = (t + 1) % vocab
        while nxt in (im_end, eos):
            nxt = (nxt + 1) % vocab
        table[t, nxt] = 1.0
    reply = tok.encode(REPLY).ids
    chain = [tok.encode("\n").ids[-1], *reply, im_end]
    assert len(set(chain[:-1])) == len(chain) - 1, "the reply's tokens must differ"
    for a, b in itertools.pairwise(chain):
        table[a] = 0.0
        table[a, b] = 1.0
    kv = np.arange(vocab * 2, dtype=np.float32).reshape(vocab, 2)
    seq, past = ["batch", "sequence"], ["batch", 1, "past", 2]
    nodes = [
        helper.make_node("Gather", ["L", "input_ids"], ["logits"]),
        helper.make_node("Gather", ["KV", "input_ids"], ["new"]),
        helper.make_node("Unsqueeze", ["new", "one"], ["new4"]),
        helper.make_node("Concat", ["past_key_values.0.key", "new4"], ["present.0.key"], axis=2),
        helper.make_node(
            "Concat", ["past_key_values.0.value", "new4"], ["present.0.value"], axis=2
        ),
    ]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, seq),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, seq),
        helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT, past),
        helper.make_tensor_value_info("past_key_values.0.value", TensorProto.FLOAT, past),
    ]
    present = ["batch", 1, "total", 2]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, [*seq, vocab]),
        helper.make_tensor_value_info("present.0.key", TensorProto.FLOAT, present),
        helper.make_tensor_value_info("present.0.value", TensorProto.FLOAT, present),
    ]
    weights = {"L": table, "KV": kv, "one": np.array([1], np.int64)}
    model = _model(nodes, inputs, outputs, weights)
    return _lm_files(folder, model, tok, [eos, im_end], context)


def _lm_files(folder: Path, model: bytes, tok, eos: list[int], context: int):
    """The LM package's files and manifest: a recorded greedy generation, one prefill sample,
    the chat template and the stop string."""
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    prompts = ["the cat", "a dog ran"]
    ids = [tok.encode(p).ids for p in prompts]
    generated = []
    for p in ids:  # greedy through any EOS, 6 tokens, as edgepack records it
        seq = list(p)
        for _ in range(6):
            feeds = _prefill(seq)
            seq.append(int(np.argmax(sess.run(["logits"], feeds)[0][0, -1])))
        generated.append(seq[len(p) :])
    feeds = _prefill(ids[0])
    (logits,) = sess.run(["logits"], feeds)
    sample = {"prompts": prompts, "prompt_ids": ids, "generated_ids": generated}
    sample |= {"max_new_tokens": 6, "decoding": "greedy", "stops_at_eos": False}
    generation = {
        "tokenizer": "tokenizer.json",
        "sample": "samples/generation.json",
        "chat_template": "chat_template.jinja",
        "stop_strings": [STOP_STRING],
        "eos_token_ids": eos,
        "bos_token_id": eos[0],
        "context_length": context,
        "kv_cache": {"layers": 1, "kv_heads": 1, "head_dim": 2, "dtype": "float32"},
        "defaults": {"max_new_tokens": 16, "temperature": 0.0},
    }
    samples = {"count": 1, "inputs": {n: f"samples/{n}.npy" for n in feeds}}
    samples["outputs"] = {"logits": "samples/logits.npy"}
    spec = [
        {
            "name": i.name,
            "dtype": "int64" if i.type == "tensor(int64)" else "float32",
            "shape": i.shape,
        }
        for i in sess.get_inputs()
    ]
    out = [{"name": o.name, "dtype": "float32", "shape": o.shape} for o in sess.get_outputs()]
    manifest = _manifest("text-generation", spec, out, {"type": "none"}, {"type": "none"}, samples)
    manifest["generation"] = generation
    files = {
        "model.onnx": model,
        "tokenizer.json": (folder / "tokenizer.json").read_bytes(),
        "tokenizer_config.json": (folder / "tokenizer_config.json").read_bytes(),
        "chat_template.jinja": QWEN_STYLE_TEMPLATE.encode(),
        "samples/generation.json": json.dumps(sample).encode(),
        "samples/logits.npy": _npy(logits),
        **{f"samples/{n}.npy": _npy(v) for n, v in feeds.items()},
    }
    return files, manifest


def _prefill(ids: list[int]) -> dict[str, np.ndarray]:
    n = len(ids)
    empty = np.zeros((1, 1, 0, 2), np.float32)
    return {
        "input_ids": np.array([ids], np.int64),
        "attention_mask": np.ones((1, n), np.int64),
        "position_ids": np.arange(n, dtype=np.int64)[None],
        "past_key_values.0.key": empty,
        "past_key_values.0.value": empty,
    }
