"""The one home for tiny test models and recipes, built on the fly (no downloads)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from packager.recipe import Recipe, build_recipe


def tiny_recipe_dict(**sections: Any) -> dict[str, Any]:
    """A digits recipe small enough to build in seconds: tiny teacher, few epochs, few runs."""
    base: dict[str, Any] = {
        "name": "digits-tiny",
        "teacher": {
            "source": "builtin:digits-cnn",
            "kwargs": {"channels": [8, 16], "hidden": 64},
            "train": {"epochs": 4, "seed": 0, "lr": 0.01},
        },
        "data": {"source": "builtin:digits", "limit": 600},
        "distill": {
            "student": {"arch": "mlp", "hidden": 16},
            "epochs": 6,
            "patience": 3,
            "lr": 0.01,
        },
        "quantize": {"mode": "static", "calib_samples": 64},
        "evaluate": {"max_drop": 0.1},
        "bench": {"runs": 20, "warmup": 2},
        "package": {"samples": 4},
    }
    if sections.get("quantize", {}).get("mode", "static") != "static":
        base["quantize"] = {}  # calib_samples is static's field: another scheme starts bare
    for name, value in sections.items():
        base[name] = {**base.get(name, {}), **value} if isinstance(value, dict) else value
    return base


def tiny_recipe(**sections: Any) -> Recipe:
    return build_recipe(tiny_recipe_dict(**sections))


class TinyNet(nn.Module):
    """A user's own teacher for `python:tiny_models:make_tiny_net` (8x8 digits in, 10 logits out)."""

    def __init__(self, hidden: int = 24):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_tiny_net(hidden: int = 24) -> nn.Module:
    torch.manual_seed(0)
    return TinyNet(hidden)


def not_a_module() -> str:
    return "nope"


class TinyTransformer(nn.Module):
    """A 1-layer attention block over token ids (MatMuls wide enough for int4 blocks of 32)."""

    def __init__(self, vocab: int = 64, dim: int = 64, hidden: int = 128, classes: int = 4):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.head = nn.Linear(dim, classes)
        self.scale = dim**-0.5

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.emb(input_ids)
        mask = (1.0 - attention_mask[:, None, :].float()) * -1e4
        att = torch.softmax(self.q(h) @ self.k(h).transpose(1, 2) * self.scale + mask, -1)
        h = self.norm1(h + self.o(att @ self.v(h)))
        h = self.norm2(h + self.ff(h))
        m = attention_mask[:, :, None].float()
        return self.head((h * m).sum(1) / m.sum(1).clamp(min=1.0))


def tiny_transformer_onnx(path, seed: int = 0, vocab: int = 64):
    """Export TinyTransformer to `path` (dynamic batch and sequence); returns the path. A
    vocab of 1024 or more makes its word table an embedding table to the quantizer."""
    torch.manual_seed(seed)
    model = TinyTransformer(vocab=vocab).eval()
    ids = torch.randint(0, 64, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.int64)
    torch.onnx.export(
        model,
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask")}
        | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path


def outlier_mlp_onnx(path, seed: int = 0):
    """A 3-layer MLP (fc1 -> relu -> spread -> head) whose `spread` weights hold one ~1000x
    outlier per row, on an input channel that is always 0: in float it changes nothing, but
    8-bit weights of `spread` (per channel too) round every normal weight to 0, so plain
    static INT8 breaks any accuracy budget until `spread` stays in float."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (32, 16)).astype(np.float32)
    w1[0] = 0.0  # relu(0) = 0: channel 0 of spread's input is exactly zero
    w2 = rng.normal(0, 0.3, (32, 32)).astype(np.float32)
    w2[:, 0] = 1000.0  # the outliers, multiplied by that zero channel
    b2 = np.zeros(32, np.float32)
    w3 = rng.normal(0, 1.0, (4, 32)).astype(np.float32)
    inits = [
        numpy_helper.from_array(a, n)
        for a, n in ((w1, "w1"), (np.zeros(32, np.float32), "b1"), (w2, "w2"), (b2, "b2"))
    ] + [numpy_helper.from_array(w3, "w3"), numpy_helper.from_array(np.zeros(4, np.float32), "b3")]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], name="fc1", transB=1),
        helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
        helper.make_node("Gemm", ["r1", "w2", "b2"], ["h2"], name="spread", transB=1),
        helper.make_node("Gemm", ["h2", "w3", "b3"], ["logits"], name="head", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "outlier_mlp",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


# Tiny text models and data for the Hugging Face tests (tests/text/): a random-init BERT with a
# WordPiece tokenizer over a 39-word vocabulary, and three-topic synthetic sentences.
TOPICS = {
    "sports": ["goal", "match", "team", "score", "coach", "league", "player", "win"],
    "weather": ["rain", "sun", "cloud", "wind", "storm", "snow", "cold", "warm"],
    "tech": ["code", "chip", "cloud", "data", "robot", "laptop", "network", "bug"],
}
FILLER = ["the", "a", "today", "was", "very", "and", "of", "new", "big", "we", "saw", "it"]


def tiny_texts(n: int, seed: int = 0, topics=None) -> list[dict[str, Any]]:
    """`n` labelled sentences: 3-11 words, mostly from their topic (of `topics`, default all),
    some filler."""
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(sorted(topics or TOPICS))
        words = [
            rng.choice(TOPICS[label]) if rng.random() < 0.6 else rng.choice(FILLER)
            for _ in range(rng.randint(3, 11))
        ]
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_tiny_texts(path, n: int = 300, seed: int = 0, topics=None):
    """The synthetic sentences as .jsonl (text + label name); returns the path."""
    import json

    with open(path, "w", encoding="utf-8") as f:
        for row in tiny_texts(n, seed, topics):
            f.write(json.dumps(row) + "\n")
    return path


def tiny_bert_folder(
    path,
    task: str = "text-classification",
    seed: int = 0,
    layers: int = 4,
    train_steps: int = 0,
    init_range: float = 0.02,
    vocab_size: int = 128,
    hidden_size: int = 32,
    dropout: float = 0.1,
):
    """Write a random-init tiny BERT (hidden 32, 4 heads) and its WordPiece tokenizer to `path`
    with save_pretrained; feature-extraction folders get a sentence-transformers modules.json
    (mean pooling + Normalize). A classifier can first take `train_steps` Adam steps on
    tiny_texts, so it knows something a student can learn from. A large `init_range` makes the
    layers (not the embeddings) shape the output, so dropping layers changes it. `dropout` 0:
    a student derived from it trains the same in one process or several. Returns the path."""
    import json
    from pathlib import Path

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        BertTokenizerFast,
    )

    path = Path(path)
    words = sorted({w for ws in TOPICS.values() for w in ws} | set(FILLER))
    # 128 entries: generated benchmark inputs draw ids below 100, so the table must cover them.
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    unused = [f"[unused{i}]" for i in range(vocab_size - len(specials) - len(words))]
    vocab = {t: i for i, t in enumerate([*specials, *words, *unused])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    fast = BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    labels = sorted(TOPICS)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=init_range,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    torch.manual_seed(seed)
    cls = BertForSequenceClassification if task == "text-classification" else BertModel
    model = cls(config)
    if train_steps:
        rows = tiny_texts(32 * train_steps, seed + 1)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for i in range(0, len(rows), 32):
            batch = rows[i : i + 32]
            enc = fast([r["text"] for r in batch], padding=True, return_tensors="pt")
            y = torch.tensor([labels.index(r["label"]) for r in batch])
            loss = model(**enc, labels=y).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval().save_pretrained(str(path))
    fast.save_pretrained(str(path))
    if task == "feature-extraction":
        (path / "1_Pooling").mkdir(exist_ok=True)
        (path / "1_Pooling/config.json").write_text(
            json.dumps({"word_embedding_dimension": hidden_size, "pooling_mode_mean_tokens": True})
        )
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ]
        (path / "modules.json").write_text(json.dumps(modules))
    return path


def tiny_text_recipe_dict(data_file: str, teacher_dir: str, **sections: Any) -> dict[str, Any]:
    """A text-classification recipe over tiny_bert_folder + write_tiny_texts, built in seconds.
    Its probe is other sentences of the same topics (written beside the data file), so a test
    needs no Debian text package."""
    from pathlib import Path

    probe = Path(data_file).with_name("tiny-probe.jsonl")
    if not probe.exists():
        write_tiny_texts(probe, n=60, seed=7)
    base: dict[str, Any] = {
        "name": "text-tiny",
        "task": "text-classification",
        "teacher": {"source": f"hf:{teacher_dir}"},
        "data": {"source": str(data_file), "max_length": 32, "stream_batch": 64},
        "distill": {
            "student": {"arch": "transformer", "layers": "every-other"},
            "losses": {"logits_kd": 1.0, "label_ce": 0.5, "hidden_mse": 0.5, "attention_kl": 0.5},
            "epochs": 2,
            "batch_size": 16,
            "lr": 0.001,
        },
        "quantize": {"mode": "dynamic", "speed_check": False},
        "evaluate": {"max_drop": 0.5, "probe": str(probe)},
        "bench": {"runs": 5, "warmup": 1, "dims": {"sequence": 16}},
        "package": {"samples": 4},
    }
    if sections.get("quantize", {}).get("mode", "static") != "static":
        base["quantize"] = {}  # calib_samples is static's field: another scheme starts bare
    for name, value in sections.items():
        base[name] = {**base.get(name, {}), **value} if isinstance(value, dict) else value
    return base


# Third-party-shaped ONNX models (issue 12): what users bring that nobody on the team wrote.


class TinyDetector(nn.Module):
    """A text-detector-shaped CNN (DBNet-like): two stride-2 convs, an upsampled feature
    concatenated with the stride-2 one (so H and W must be multiples of 4: a guessed 1x1 input
    cannot run), and a probability map (batch, 1, H, W) out."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fuse = nn.Conv2d(24, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = torch.relu(self.c1(x))
        h2 = torch.relu(self.c2(h1))
        up = nn.functional.interpolate(h2, scale_factor=2.0, mode="nearest")
        h = torch.relu(self.fuse(torch.cat([h1, up], 1)))
        h = nn.functional.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.sigmoid(self.head(h))


def make_tiny_detector() -> nn.Module:
    torch.manual_seed(0)
    return TinyDetector().eval()


def tiny_detector_onnx(path, opset: int = 11):
    """TinyDetector at an old opset (PaddleOCR/RapidOCR ship opset 11) with dynamic batch,
    height and width, and a Resize; returns the path."""
    io = {"x": {0: "batch", 2: "height", 3: "width"}, "maps": {0: "batch", 2: "height", 3: "width"}}
    torch.onnx.export(
        make_tiny_detector(),
        (torch.randn(1, 3, 32, 32),),
        str(path),
        input_names=["x"],
        output_names=["maps"],
        dynamic_axes=io,
        opset_version=opset,
        dynamo=False,
    )
    return path


class TinyRecognizer(nn.Module):
    """A text-recognizer-shaped CNN (CRNN-like, no RNN): a 32-pixel-high line image in, one
    class distribution per 4 pixels of width out: (batch, width / 4, 12)."""

    def __init__(self, classes: int = 12):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(16 * 8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)  # (batch, 16, 8, width / 4)
        h = h.permute(0, 3, 1, 2).flatten(2)  # (batch, time, 16 * 8)
        return self.head(h)


def tiny_recognizer_onnx(path, opset: int = 17):
    torch.manual_seed(0)
    torch.onnx.export(
        TinyRecognizer().eval(),
        (torch.randn(1, 3, 32, 64),),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch", 3: "width"}, "logits": {0: "batch", 1: "time"}},
        opset_version=opset,
        dynamo=False,
    )
    return path


class LengthsEncoder(nn.Module):
    """A speech-encoder-shaped model with two inputs: features (batch, time, 8) and int64
    `lengths` (batch,): the mean over the first `lengths` frames, then a head. A length of 0
    (what a zero-filled input would be) averages nothing."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.proj(features))
        t = torch.arange(features.shape[1])[None, :]
        mask = (t < lengths[:, None]).float()[:, :, None]
        return self.head((h * mask).sum(1) / mask.sum(1).clamp(min=1.0))


def lengths_encoder_onnx(path):
    torch.manual_seed(0)
    torch.onnx.export(
        LengthsEncoder().eval(),
        (torch.randn(2, 10, 8), torch.tensor([10, 4])),
        str(path),
        input_names=["features", "lengths"],
        output_names=["logits"],
        dynamic_axes={"features": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
        | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path


class TinyCNN(nn.Module):
    """An image classifier any size of image fits (global average pooling): the `python:`
    factory of `edgepack export` tests, with symbolic height and width."""

    def __init__(self, width: int = 8, classes: int = 5):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 16, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


def make_tiny_cnn(width: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return TinyCNN(width).eval()


def tiny_cnn_program(path, example=(2, 3, 32, 48)):
    """TinyCNN as a torch.export ExportedProgram (.pt2) with dynamic batch, height, width."""
    batch = torch.export.Dim("batch", min=1, max=64)
    h, w = torch.export.Dim("height", min=16, max=512), torch.export.Dim("width", min=16, max=512)
    program = torch.export.export(
        make_tiny_cnn(), (torch.randn(*example),), dynamic_shapes=({0: batch, 2: h, 3: w},)
    )
    torch.export.save(program, str(path))
    return path


class ColourTeacher(nn.Module):
    """An image teacher whose answers vary from image to image: two 3x3 convs, global average
    pooling and a head with large weights (seeded), so the top class follows the picture's
    colours and layout. Any image size (global pooling)."""

    def __init__(self, classes: int = 6, width: int = 24):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(width, classes)
        with torch.no_grad():
            self.head.weight.mul_(20.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


def make_colour_teacher(classes: int = 6, width: int = 24) -> nn.Module:
    torch.manual_seed(0)
    return ColourTeacher(classes, width).eval()


# Tiny causal language models (task text-generation) of each family edgepack exports, random
# init, with a byte-level BPE trained on tiny English-like sentences; no download.
LM_FAMILIES = ("llama", "qwen2", "qwen3", "gpt2", "phi3")
_LM_SUBJECTS = ["the cat", "a dog", "the robot", "my friend", "the team", "a bird"]
_LM_VERBS = ["sees", "likes", "finds", "builds", "moves", "eats"]
_LM_OBJECTS = ["the ball", "a red box", "the old map", "some bread", "the big tree", "a song"]


def tiny_lm_texts(n: int, seed: int = 0) -> list[str]:
    import random

    rng = random.Random(seed)
    return [
        f"{rng.choice(_LM_SUBJECTS)} {rng.choice(_LM_VERBS)} {rng.choice(_LM_OBJECTS)} "
        f"and {rng.choice(_LM_VERBS)} {rng.choice(_LM_OBJECTS)} today."
        for _ in range(n)
    ]


def write_tiny_lm_texts(path, n: int = 400, seed: int = 0, prompts: bool = False):
    """Sentences as .jsonl ({"text"}, or {"prompt", "completion"} split after 3 words)."""
    import json

    with open(path, "w", encoding="utf-8") as f:
        for text in tiny_lm_texts(n, seed):
            words = text.split(" ")
            row = (
                {"prompt": " ".join(words[:3]), "completion": " " + " ".join(words[3:])}
                if prompts
                else {"text": text}
            )
            f.write(json.dumps(row) + "\n")
    return path


def _lm_config(family: str, vocab: int, layers: int, eos: int, pad: int, hidden: int = 32):
    import transformers as T

    common = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=eos,
        bos_token_id=eos,
        pad_token_id=pad,
    )
    if family == "gpt2":
        return T.GPT2Config(
            vocab_size=vocab,
            n_embd=hidden,
            n_layer=layers,
            n_head=4,
            n_inner=2 * hidden,
            n_positions=256,
            eos_token_id=eos,
            bos_token_id=eos,
            pad_token_id=pad,
        )
    if family == "qwen3":
        return T.Qwen3Config(**common, head_dim=hidden // 4)
    if family == "phi3":  # no long-context rope scaling: a 4k Phi-3's shape
        return T.Phi3Config(**common, original_max_position_embeddings=256)
    return {"llama": T.LlamaConfig, "qwen2": T.Qwen2Config}[family](**common)


def tiny_causal_lm_folder(
    path, family: str = "llama", seed: int = 0, layers: int = 4, hidden: int = 32
):
    """A random-init tiny causal LM of `family` and its BPE tokenizer (trained on
    tiny_lm_texts), saved as a transformers folder at `path`; returns the path. hidden=64
    gives heads of 16 (onnxruntime's GroupQueryAttention on CPU needs a multiple of 16)."""
    from pathlib import Path

    import transformers as T

    from packager.sources.builtin_lm import EOS, PAD, train_tokenizer

    path = Path(path)
    tok = train_tokenizer(iter(tiny_lm_texts(300, seed=99)), 160, path)
    eos, pad = tok.token_to_id(EOS), tok.token_to_id(PAD)
    torch.manual_seed(seed)
    cfg = _lm_config(family, tok.get_vocab_size(), layers, eos, pad, hidden)
    model = T.AutoModelForCausalLM.from_config(cfg)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.save_pretrained(str(path))
    return path


def tiny_lm_recipe_dict(data_file: str, teacher_dir: str, **sections: Any) -> dict[str, Any]:
    """A text-generation recipe over a tiny causal LM folder: a few steps, a few tokens."""
    base: dict[str, Any] = {
        "name": "tiny-lm-test",
        "task": "text-generation",
        "teacher": {"source": f"hf:{teacher_dir}"},
        "data": {"source": data_file, "max_length": 32, "val_fraction": 0.1, "test_fraction": 0.1},
        "distill": {
            "student": {"arch": "causal-lm", "num_layers": 2, "intermediate_size": 32},
            "losses": {"logits_kd": 1.0, "label_ce": 0.1},
            "epochs": 1,
            "batch_size": 8,
            "lr": 0.003,
            "max_steps": 6,
            "threads": 1,
        },
        "export": {"opset": 18},
        "quantize": {"mode": "int4", "block_size": 16, "int4_accuracy_level": 4, "speed_runs": 5},
        "evaluate": {"lm_sequences": 4},
        "bench": {"threads": [1], "prefill": [16], "decode": 8, "lm_runs": 1},
        "package": {"generation": {"sample_prompts": 2, "sample_tokens": 8}},
    }
    for key, value in sections.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return base
