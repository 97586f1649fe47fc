"""edgepack never downloads: the Hugging Face libraries' offline switches, set before any of
them is imported (import this module first wherever transformers may load)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
