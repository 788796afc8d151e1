"""tunescribe_train: the Python side of tunescribe's models (training only; the product is C++).

What it holds: the MT3-style T5 (mt3_model), the hconv harmonic front end and dense heads (hconv),
the MT3 log-mel front end (features), shard reading and augmentation (dataset), MIDI note
extraction (midi_notes), the corpus train/validation split (split), audio decoding (audio_codec),
safetensors I/O (safetensors_io) and the training loop (trainer).
What it does not: command lines. The scripts beside this package (tools/train/train.py,
render.py, evaluate.py, ...) are thin mains over it; its tests live in tests/python/.
"""
import os

TOOLS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tools/train
REPO = os.path.dirname(os.path.dirname(TOOLS_DIR))
