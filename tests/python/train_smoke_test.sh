#!/usr/bin/env bash
# tests/python/train_smoke_test.sh — CI smoke test of the training pipeline (~1-2 min on 2 cores):
#   1. render 2 tiny train excerpts (+1 validation excerpt) with FluidSynth, targets from
#      `tunescribe tokens` (the C++ codec);
#   2. train the "micro" model for 40 steps on CPU and check that the loss falls;
#   3. resume from the checkpoint for 5 more steps (checkpoint + resume path);
#   4. export (fp16 safetensors + config.json with provenance), reload it in Python and compare
#      logits with the trained weights; check names, dtypes and provenance;
#   5. if `tunescribe transcribe` can run a model, transcribe a rendered clip with the export.
# Usage: tests/python/train_smoke_test.sh [path/to/tunescribe]   (default build/bin/tunescribe)
# Exit 0 = pass, 77 = skipped (missing fluidsynth / soundfont / shared corpora / binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
BIN="${1:-build/bin/tunescribe}"
SF=/usr/share/sounds/sf2/TimGM6mb.sf2
skip() { echo "SKIP: $*"; exit 77; }
command -v fluidsynth >/dev/null || skip "fluidsynth not installed"
[ -f "$SF" ] || skip "$SF missing"
[ -x "$BIN" ] || skip "$BIN not built"
[ -d ../shared/corpora ] || [ -d /work/shared/corpora ] || skip "shared/corpora absent"
"$BIN" tokens --help >/dev/null 2>&1 || skip "$BIN has no 'tokens' command"

T=$(mktemp -d /tmp/ts-train-smoke.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=2
export PYTHONPATH="$PWD/tools/train${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)

echo "[smoke] render"
$PY tools/train/render.py --split train --limit-pieces 2 --excerpts-per-file 1 --job-excerpts 2 \
    --limit-jobs 1 --workers 1 --soundfont "$SF" --tunescribe "$BIN" --out "$T/shards" --seed 7
$PY tools/train/render.py --split validation --limit-pieces 1 --excerpts-per-file 1 --job-excerpts 1 \
    --limit-jobs 1 --workers 1 --soundfont "$SF" --tunescribe "$BIN" --out "$T/shards" --seed 7
[ "$(wc -l < "$T/shards/manifest.jsonl")" = 2 ] || { echo "FAIL: manifest"; exit 1; }
# A second shard root through --train-soundfont (the resume below trains on both roots); a missing
# soundfont is refused before any work (fluidsynth would render silence for it).
$PY tools/train/render.py --split train --limit-pieces 2 --excerpts-per-file 1 --job-excerpts 2 \
    --limit-jobs 1 --workers 1 --train-soundfont "$SF" --tunescribe "$BIN" --out "$T/shards-b" --seed 8
if err=$($PY tools/train/render.py --split train --limit-jobs 1 --train-soundfont "$T/missing.sf2" \
         --out "$T/shards-c" 2>&1); then echo "FAIL: a missing --train-soundfont was accepted"; exit 1; fi
case "$err" in *"missing.sf2: no such file"*) ;; *) echo "FAIL: missing soundfont message: $err"; exit 1;; esac
[ ! -e "$T/shards-c" ] || { echo "FAIL: output written for a missing soundfont"; exit 1; }

echo "[smoke] train"
$PY tools/train/train.py --data "$T/shards" --run "$T/run" --size micro --steps 40 --batch-size 4 \
    --lr 3e-3 --log-every 5 --eval-every 40 --eval-examples 4 --ckpt-every 40 --threads 2 --seed 3
$PY tools/train/train.py --data "$T/shards:$T/shards-b" --run "$T/run" --size micro --steps 45 --batch-size 4 \
    --lr 3e-3 --log-every 5 --eval-every 45 --eval-examples 4 --ckpt-every 45 --threads 2 --seed 3 \
    --export "$T/export"

echo "[smoke] check"
$PY - "$T" <<'EOF'
import json, os, sys
import numpy as np, torch
T = sys.argv[1]
from tunescribe_train import mt3_model as M
from tunescribe_train.safetensors_io import read_safetensors
rows = [json.loads(l) for l in open(os.path.join(T, "run", "log.jsonl"))]
tr = [r for r in rows if r["kind"] == "train"]
ev = [r for r in rows if r["kind"] == "eval"]
first, last = np.mean([r["ce"] for r in tr[:2]]), np.mean([r["ce"] for r in tr[-2:]])
print("train ce: first %.3f -> last %.3f over %d steps" % (first, last, tr[-1]["step"]))
assert tr[-1]["step"] == 45, "resume did not reach step 45"
assert last < 0.75 * first, "loss did not fall enough"
assert len(ev) == 2 and ev[-1]["val_loss"] < ev[0]["val_loss"] * 1.05, ev
from tunescribe_train import trainer as TR
ckpt = TR.load_checkpoint(os.path.join(T, "run", "checkpoint.pt"))
model, cfg = M.load_model(os.path.join(T, "export"))
ref = M.MT3Model(M.ModelConfig.from_dict(cfg["model"]))
ref.load_state_dict(ckpt["model"])
ref.eval(); model.eval()
mel = torch.randn(2, 256, 512) - 4.0
inp = torch.tensor([[0, 1134, 60, 1133], [0, 1134, 1, 0]])
with torch.no_grad():
    a, b = ref(mel, inp), model(mel, inp)
    na = ref(mel, inp, null_audio=torch.tensor([True, True]))
    nb = model(mel, inp, null_audio=torch.tensor([True, True]))
d = float((a - b).abs().max()) / float(a.abs().max())
dn = float((na - nb).abs().max()) / float(na.abs().max())
print("export reload: relative max |logit diff| %.2e (audio), %.2e (null memory)" % (d, dn))
assert d < 2e-2 and dn < 2e-2, "fp16 export does not reproduce the trained model"
t = read_safetensors(os.path.join(T, "export", "model.safetensors"))
assert "target/decoder/null_memory" in t and "target/encoder/continuous_inputs_projection/kernel" in t
hdr_len = int.from_bytes(open(os.path.join(T, "export", "model.safetensors"), "rb").read(8), "little")
hdr = json.loads(open(os.path.join(T, "export", "model.safetensors"), "rb").read(8 + hdr_len)[8:])
assert all(v["dtype"] == "F16" for k, v in hdr.items() if k != "__metadata__"), "export is not fp16"
tr_cfg = cfg["training"]
for k in ("steps", "git_commit", "hardware", "wall_time_s", "data", "split", "prefix_end_id"):
    assert k in tr_cfg, k
roots = tr_cfg["data"]["roots"]  # the resumed run trained on both shard roots
assert tr_cfg["steps"] == 45 and [r["train"]["shards"] for r in roots] == [1, 1], roots
assert roots[1]["train"]["soundfonts"] == ["TimGM6mb.sf2"], roots[1]
from tunescribe_train import dataset as D
assert len(D.list_shards(roots[0]["root"] + os.pathsep + roots[1]["root"], "train")) == 2
# --schedule-from: a warm restart replays the same warm-up and cosine, shifted to start at that step
from types import SimpleNamespace as NS
base = NS(lr=1.0, warmup_steps=10, lr_decay="cosine", lr_final=0.1, steps=110, schedule_from=0)
restart = NS(lr=1.0, warmup_steps=10, lr_decay="cosine", lr_final=0.1, steps=160, schedule_from=50)
for k in (0, 5, 9, 10, 60, 100, 110):
    assert abs(TR.lr_at(k, base) - TR.lr_at(50 + k, restart)) < 1e-12, k
assert TR.lr_at(50, restart) == 0.1 and abs(TR.lr_at(160, restart) - 0.1) < 1e-12
print("export OK: %d tensors, fp16, provenance keys present" % len(t))
EOF

echo "[smoke] C++ load"
clip="$T/clip.wav"
$PY - "$T" "$clip" <<'EOF'
import io, sys, numpy as np, soundfile as sf, glob
z = np.load(sorted(glob.glob(sys.argv[1] + "/shards/train/*.npz"))[0])
x, sr = sf.read(io.BytesIO(bytes(z["audio"])), dtype="float32")
sf.write(sys.argv[2], x[: 3 * sr], sr, subtype="PCM_16")
EOF
set +e
out=$("$BIN" transcribe "$clip" --model "$T/export" -o "$T/out" --format json 2>&1)
rc=$?
set -e
if [ $rc = 0 ]; then
  [ -s "$T/out/clip.json" ] || { echo "FAIL: transcribe wrote no clip.json"; exit 1; }
  echo "C++ transcribe with the export: OK"
else
  echo "FAIL: tunescribe transcribe --model export: rc=$rc: $out"; exit 1
fi
echo "[smoke] hconv: heads + tokens, export, --init-from, C++ frames and tokens decoders"
echo '{"d_model":32,"num_heads":2,"head_dim":16,"mlp_dim":64,"num_encoder_layers":1,"num_decoder_layers":1}' > "$T/t5.json"
echo '{"conv_channels":4,"key_channels":8,"res_layers":1}' > "$T/hc.json"
$PY tools/train/train.py --data "$T/shards" --run "$T/hrun" --arch hconv --model-json "$T/t5.json" \
    --hconv-json "$T/hc.json" --codec-json docs/runs/hconv/codec.json --steps 30 --batch-size 4 --lr 3e-3 \
    --log-every 5 --eval-every 30 --eval-examples 4 --ckpt-every 30 --threads 2 --seed 3 --export "$T/hexport"
$PY tools/train/train.py --data "$T/shards" --run "$T/hrun2" --init-from "$T/hexport" --steps 33 --batch-size 4 \
    --log-every 1 --eval-every 100 --threads 2 --seed 4
# grow: wider key channels and one more dilated residual layer, initialised from the export
echo '{"key_channels":12,"res_layers":2}' > "$T/grow.json"
$PY tools/train/train.py --data "$T/shards" --run "$T/hrun3" --init-from "$T/hexport" --hconv-json "$T/grow.json" \
    --steps 32 --batch-size 4 --log-every 1 --eval-every 100 --threads 2 --seed 4 --export "$T/hexport3"
$PY - "$T" <<'EOF'
import json, os, sys
import numpy as np, torch
T = sys.argv[1]
from tunescribe_train import hconv as H
from tunescribe_train import trainer as TR
rows = [json.loads(l) for l in open(os.path.join(T, "hrun", "log.jsonl"))]
tr = [r for r in rows if r["kind"] == "train"]
d0, d1 = tr[0]["dense_frame"] + tr[0]["dense_onset"], tr[-1]["dense_frame"] + tr[-1]["dense_onset"]
print("hconv dense onset+frame loss: %.3f -> %.3f" % (d0, d1))
assert d1 < 0.75 * d0, "dense loss did not fall"
ev = [r for r in rows if r["kind"] == "eval"][-1]
assert "head_onset_f1" in ev and "val_loss" in ev, ev
model, cfg = H.load_hconv(os.path.join(T, "hexport"))
assert cfg["format_version"] == 2 and cfg["frontend"]["kind"] == "logfreq" and cfg["codec"]["num_velocity_bins"] == 127
assert cfg["decoding"]["default"] == "frames" and cfg["training"]["arch"] == "hconv"
ckpt = TR.load_checkpoint(os.path.join(T, "hrun", "checkpoint.pt"))
ref = H.HConvModel(model.cfg, cfg["frontend"], cfg["hconv"])
ref.load_state_dict(ckpt["model"])
ref.eval()
feats = torch.randn(2, 128, 300) - 4.0
with torch.no_grad():
    a, b = ref.front(feats)[0], model.front(feats)[0]
rel = float((a - b).abs().max()) / float(a.abs().max())
print("hconv export reload: relative max |head diff| %.2e" % rel)
assert rel < 2e-2
rows2 = [json.loads(l) for l in open(os.path.join(T, "hrun2", "log.jsonl"))]
assert [r["step"] for r in rows2 if r["kind"] == "train"][0] == 31, "--init-from did not continue at step 31"
rows3 = [json.loads(l) for l in open(os.path.join(T, "hrun3", "log.jsonl"))]
assert [r["step"] for r in rows3 if r["kind"] == "train"][0] == 31, "grown --init-from did not continue at step 31"
grown, gcfg = H.load_hconv(os.path.join(T, "hexport3"))
assert gcfg["hconv"]["key_channels"] == 12 and gcfg["hconv"]["res_layers"] == 2, gcfg["hconv"]
assert gcfg["hconv"]["conv_channels"] == cfg["hconv"]["conv_channels"]
print("hconv OK")
EOF
for dec in frames tokens; do
  "$BIN" transcribe "$clip" --model "$T/hexport" -o "$T/hout-$dec" --format json --decoder $dec >/dev/null 2>&1 ||
    { echo "FAIL: tunescribe transcribe --decoder $dec with the hconv export"; exit 1; }
  [ -s "$T/hout-$dec/clip.json" ] || { echo "FAIL: --decoder $dec wrote no clip.json"; exit 1; }
done
echo "C++ transcribe with the hconv export (frames and tokens): OK"
"$BIN" transcribe "$clip" --model "$T/hexport3" -o "$T/hout-grown" --format json >/dev/null 2>&1 ||
  { echo "FAIL: tunescribe transcribe with the grown hconv export"; exit 1; }
[ -s "$T/hout-grown/clip.json" ] || { echo "FAIL: the grown export wrote no clip.json"; exit 1; }
echo "C++ transcribe with the grown hconv export: OK"
echo "[smoke] PASS in $(( $(date +%s) - start )) s"
