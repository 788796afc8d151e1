#!/usr/bin/python3
"""Train the tunescribe MT3-style model from rendered shards; export the model directory.

Runs unchanged on CPU (Debian python3-torch 1.13) and on a CUDA GPU with a current PyTorch
(bf16 autocast there). See docs/training.md for the recipe.

  train.py --data data/shards --run runs/tiny --size tiny --steps 50 --batch-size 4
  train.py --data data/shards --run runs/base --size base --steps 200000 --batch-size 64  # GPU
  train.py --run runs/base --export models/default            # export the latest checkpoint only
  train.py --run runs/base --plot docs/learning-curve.png     # plot the learning curve only

Objective (mt3.md §3.6): teacher-forced cross-entropy on non-pad target tokens + z_loss 1e-4 *
logsumexp^2; AdamW (default) or Adafactor (decay 0.8, no momentum, update clipping 1.0).
"Continue without audio" (for `tunescribe generate`): with probability --null-prob an example's
encoder output is replaced by the learned `null_memory` and the decoder sequence is
  BOS, <previous segment's tokens without EOS>, PREFIX_END, <target tokens>, EOS
with PREFIX_END = the first extra id (3 + codec classes; 1391 for the mt3 codec) and loss only on
the target tokens (and EOS). Examples with audio keep the plain MT3 sequence BOS, targets, EOS.
Checkpoints (run/checkpoint.pt: model, optimizer, step, RNG states, elapsed wall time) every
--ckpt-every steps and at the end; a run resumes from it automatically. Logs: run/log.jsonl
(one JSON object per logged train step and per evaluation), run/learning_curve.png.
"""
import argparse
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import dataset as D  # noqa: E402
import features  # noqa: E402
import hconv as H  # noqa: E402
import mt3_model as M  # noqa: E402

SIZES = {
    # ~0.1 M parameters: the CI smoke test (seconds per 10 steps on 2 cores)
    "micro": dict(d_model=32, num_heads=2, head_dim=16, mlp_dim=64, num_encoder_layers=1, num_decoder_layers=1),
    # ~0.4 M
    "tiny": dict(d_model=64, num_heads=2, head_dim=32, mlp_dim=128, num_encoder_layers=2, num_decoder_layers=2),
    # ~5 M
    "small": dict(d_model=256, num_heads=4, head_dim=64, mlp_dim=768, num_encoder_layers=4, num_decoder_layers=4),
    # ~21 M: the default model's size on a 2-core CPU budget (issue 3: ~20M at >= 20x real time);
    # fewer decoder than encoder layers because autoregressive decoding dominates inference time
    "base": dict(d_model=384, num_heads=6, head_dim=64, mlp_dim=1024, num_encoder_layers=6, num_decoder_layers=4),
    # 45.9 M: MT3 "small" (T5.1.1 small) exactly
    "mt3": dict(d_model=512, num_heads=6, head_dim=64, mlp_dim=1024, num_encoder_layers=8, num_decoder_layers=8),
}


def load_checkpoint(path):
    """torch.load of our own checkpoint (it holds RNG states, so not weights-only on torch >= 2.6)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")


def codec_sizes(codec: dict):
    """(num_classes, vocab_size, embedding_rows, prefix_end_id) for a codec config (mt3.md §2.1/2.2)."""
    v = int(codec["num_velocity_bins"])
    max_shift = int(codec["steps_per_second"]) * int(codec["max_shift_seconds"])
    num_classes = (max_shift + 1) + 128 + (v + 1) + 1 + 128 + 128
    vocab = 3 + num_classes + int(codec.get("num_extra_ids", 100))
    rows = (vocab + 127) // 128 * 128
    return num_classes, vocab, rows, 3 + num_classes


# ---------------------------------------------------------------------------------------------
class Adafactor(torch.optim.Optimizer):
    """Minimal Adafactor (Shazeer & Stern 2018) as configured for MT3: factored second moments for
    matrices, decay rate 0.8 (beta2_t = 1 - t^-0.8), no momentum, update clipping 1.0, explicit lr."""

    def __init__(self, params, lr=1e-3, decay_rate=0.8, eps=1e-30, clip_threshold=1.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, decay_rate=decay_rate, eps=eps, clip_threshold=clip_threshold,
                                      weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.float()
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    if g.dim() >= 2:
                        st["vr"] = torch.zeros(g.shape[:-1], device=g.device)
                        st["vc"] = torch.zeros(g.shape[:-2] + g.shape[-1:], device=g.device)
                    else:
                        st["v"] = torch.zeros_like(g)
                st["step"] += 1
                beta2 = 1.0 - st["step"] ** (-group["decay_rate"])
                g2 = g * g + group["eps"]
                if g.dim() >= 2:
                    st["vr"].mul_(beta2).add_(g2.mean(-1), alpha=1 - beta2)
                    st["vc"].mul_(beta2).add_(g2.mean(-2), alpha=1 - beta2)
                    r = st["vr"] / st["vr"].mean(-1, keepdim=True)
                    u = g * torch.rsqrt(r[..., None] * st["vc"][..., None, :])
                else:
                    st["v"].mul_(beta2).add_(g2, alpha=1 - beta2)
                    u = g * torch.rsqrt(st["v"])
                u.div_(max(1.0, float(u.pow(2).mean().sqrt()) / group["clip_threshold"]))
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(u.to(p.dtype), alpha=-group["lr"])


# ---------------------------------------------------------------------------------------------
def build_batch(batch, null_mask, prefix_end_id, max_prefix, device):
    """Decoder input/target tensors and loss weights.
    null examples: BOS prev PREFIX_END targets; others: BOS targets. Targets end with EOS."""
    seqs, starts = [], []
    for i, t in enumerate(batch["targets"]):
        t = t[t > 0]  # strip padding (targets never contain PAD)
        if null_mask[i]:
            prev = batch["prev"][i]
            if len(prev) > max_prefix:
                prev = prev[:0]  # too long: no prefix rather than a cut one (tie sections stay whole)
            s = torch.cat([prev, torch.tensor([prefix_end_id]), t])
            starts.append(len(prev) + 1)
        else:
            s = t
            starts.append(0)
        seqs.append(s)
    L = max(len(s) for s in seqs)
    tgt = torch.zeros(len(seqs), L, dtype=torch.long)
    w = torch.zeros(len(seqs), L)
    for i, s in enumerate(seqs):
        tgt[i, :len(s)] = s
        w[i, starts[i]:len(s)] = 1.0
    inp = torch.zeros_like(tgt)
    inp[:, 1:] = tgt[:, :-1]
    return inp.to(device), tgt.to(device), w.to(device)


def _single(example):
    """DataLoader collate_fn for unbatched examples: keep the numpy arrays as they are."""
    return example


def bucketed_batches(examples, batch_size, pool, null_prob, max_prefix, rng):
    """Batches from a stream of single examples: `pool` batches' worth are drawn, each example is
    made a null-memory example with probability null_prob, the pool is sorted by decoder sequence
    length (prefix + targets) and cut into batches that are yielded in random order. Padding, not
    the model, dominated CPU training time (targets are 20-300 tokens, null examples add a prefix).
    Yields (collated batch, null mask)."""
    while True:
        exs = [next(examples) for _ in range(batch_size * max(1, pool))]
        nulls = rng.random(len(exs)) < null_prob
        lens = [len(e["targets"]) + (len(e["prev"]) + 1 if n and len(e["prev"]) <= max_prefix else 0)
                for e, n in zip(exs, nulls)]
        order = np.argsort(lens, kind="stable") if pool > 1 else np.arange(len(exs))
        groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        for gi in rng.permutation(len(groups)):
            g = groups[gi]
            yield D.collate([exs[i] for i in g]), nulls[g]


def weighted_loss(logits, targets, weights, z_loss):
    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1)
    ce = lse - logits.gather(-1, targets[..., None])[..., 0]
    n = weights.sum().clamp(min=1.0)
    ce_m = (ce * weights).sum() / n
    z_m = (z_loss * lse.pow(2) * weights).sum() / n
    correct = ((logits.argmax(-1) == targets).float() * weights).sum() / n
    return ce_m + z_m, {"ce": float(ce_m), "z": float(z_m), "acc": float(correct), "tokens": float(n)}


def git_commit():
    try:
        c = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return c + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def hardware(device):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    hw = {"cpu": cpu, "cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        hw["gpu"] = torch.cuda.get_device_name(device)
    return hw


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_summary(root):
    if os.pathsep in root:
        return {"roots": [data_summary(r) for r in root.split(os.pathsep)]}
    man = os.path.join(root, "manifest.jsonl")
    out = {"root": os.path.abspath(root)}
    if os.path.exists(man):
        lines = [json.loads(l) for l in open(man) if l.strip()]
        out["manifest_sha256"] = sha256_file(man)
        for split in ("train", "validation"):
            ls = [l for l in lines if l["split"] == split]
            out[split] = {"shards": len(ls), "segments": sum(l["n_segments"] for l in ls),
                          "audio_hours": round(sum(l["audio_s"] for l in ls) / 3600, 3),
                          "pieces": len(set(p for l in ls for p in l["pieces"])),
                          "soundfonts": sorted(set(l["soundfont"] for l in ls))}
    out["corpora"] = "ASAP (CC BY-NC-SA 4.0), POP909 (MIT), Nottingham (GPL-3.0): ../shared/corpora"
    return out


def plot_curve(log_path, png_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [json.loads(l) for l in open(log_path) if l.strip()]
    tr = [r for r in rows if r.get("kind") == "train"]
    ev = [r for r in rows if r.get("kind") == "eval"]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    dense = any("dense_frame" in r for r in tr)
    if tr:
        ax[0].plot([r["step"] for r in tr], [r["loss"] for r in tr], lw=0.8,
                   label="train loss (heads + tokens)" if dense else "train loss")
        if dense:
            ax[0].plot([r["step"] for r in tr], [r["ce"] for r in tr], lw=0.6, alpha=0.6, label="train token CE")
    if ev:
        ax[0].plot([r["step"] for r in ev], [r["val_loss"] for r in ev], "o-", label="validation token CE")
        if any("val_dense_frame" in r for r in ev):
            ax[0].plot([r["step"] for r in ev if "val_dense_frame" in r],
                       [r["val_dense_frame"] + r["val_dense_onset"] for r in ev if "val_dense_frame" in r], "s-",
                       label="validation onset + frame BCE")
        ax[1].plot([r["step"] for r in ev], [r["val_acc"] for r in ev], "o-", label="val token accuracy")
        if any("val_null_acc" in r for r in ev):
            ax[1].plot([r["step"] for r in ev if "val_null_acc" in r],
                       [r["val_null_acc"] for r in ev if "val_null_acc" in r], "s--", label="no-audio accuracy")
        for key in ("onset_f1", "onset_offset_f1", "head_onset_f1"):
            pts = [(r["step"], r[key]) for r in ev if key in r]
            if pts:
                ax[1].plot(*zip(*pts), "^-", label=key)
    ax[0].set_xlabel("step")
    ax[0].set_yscale("log")
    ax[0].legend()
    ax[0].grid(alpha=0.3)
    ax[1].set_xlabel("step")
    if ev:
        ax[1].legend()
    else:
        ax[1].text(0.5, 0.5, "no validation shards", ha="center", va="center", transform=ax[1].transAxes)
    ax[1].grid(alpha=0.3)
    fig.tight_layout()
    tmp = png_path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, png_path)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
def lr_at(step: int, args) -> float:
    """Linear warm-up over --warmup-steps, then constant or a cosine decay to lr_final * lr at --steps;
    both counted from --schedule-from (a warm restart of a resumed run)."""
    lr = args.lr
    step -= args.schedule_from
    if args.warmup_steps:
        lr *= min(1.0, (step + 1) / args.warmup_steps)
    if args.lr_decay == "cosine" and step >= args.warmup_steps:
        frac = min(1.0, (step - args.warmup_steps) / max(1, args.steps - args.schedule_from - args.warmup_steps))
        lr *= args.lr_final + (1.0 - args.lr_final) * 0.5 * (1.0 + math.cos(math.pi * frac))
    return lr


def main():
    ap = argparse.ArgumentParser(description="train the tunescribe model (see docs/training.md)")
    ap.add_argument("--data", default=os.path.join(REPO, "data", "shards"),
                    help="shard root(s) with train/ and validation/; join several with '%s'" % os.pathsep)
    ap.add_argument("--run", required=True, help="run directory (checkpoint, log, plot)")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--model-json", help="JSON with ModelConfig fields overriding --size")
    ap.add_argument("--arch", choices=["mt3", "hconv"], default="mt3",
                    help="mt3: log-mel T5 (tokens only); hconv: log-frequency harmonic conv front end with "
                         "dense note heads feeding the T5 (tools/train/hconv.py)")
    ap.add_argument("--hconv-json", help="JSON overriding hconv.DEFAULT_HCONV fields (--arch hconv)")
    ap.add_argument("--token-frac", type=float, default=0.5,
                    help="hconv: fraction of each batch that also trains the token decoder (0 = heads only)")
    ap.add_argument("--token-weight", type=float, default=1.0, help="hconv: weight of the token loss")
    ap.add_argument("--init-from", metavar="MODEL_DIR",
                    help="start a new run (no checkpoint yet) from an exported hconv model directory, e.g. the "
                         "committed models/default: weights from it, step and CPU time from its config.json "
                         "(the optimizer starts fresh: use --schedule-from/--warmup-steps for a warm restart)")
    ap.add_argument("--codec-json", help="JSON codec section (default: mt3, 1 velocity bin)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup-steps", type=int, default=0)
    ap.add_argument("--lr-decay", choices=["none", "cosine"], default="none",
                    help="cosine: after warm-up, decay the LR to --lr-final x LR at --steps")
    ap.add_argument("--schedule-from", type=int, default=0,
                    help="start the warm-up and cosine schedule at this step (warm restart when resuming)")
    ap.add_argument("--lr-final", type=float, default=0.1, help="final LR as a fraction of --lr (cosine)")
    ap.add_argument("--optimizer", choices=["adamw", "adafactor"], default="adamw")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--z-loss", type=float, default=1e-4)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--null-prob", type=float, default=0.1, help="fraction of 'continue without audio' examples")
    ap.add_argument("--max-prefix", type=int, default=511)
    ap.add_argument("--bucket-pool", type=int, default=8,
                    help="batches drawn together and regrouped by decoder length (less padding; 1 = off)")
    ap.add_argument("--max-target-len", type=int, default=1023)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-examples", type=int, default=64)
    ap.add_argument("--ckpt-every", type=int, default=1000)
    ap.add_argument("--export", help="write the model directory here at the end (fp16)")
    ap.add_argument("--name", help="model name in the exported config.json (default tunescribe-<size>); -step<N> is appended")
    ap.add_argument("--decoding-json", help="hconv export: the config.json 'decoding' section (default frames, 0.5/0.3)")
    ap.add_argument("--export-dtype", default="F16", choices=["F16", "BF16", "F32"])
    ap.add_argument("--plot", help="also write the learning curve PNG here")
    ap.add_argument("--time-limit-s", type=float, default=0, help="stop (checkpoint, export) after this wall time")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if (args.device == "auto" and torch.cuda.is_available()) else
                          ("cpu" if args.device == "auto" else args.device))
    os.makedirs(args.run, exist_ok=True)
    ckpt_path = os.path.join(args.run, "checkpoint.pt")
    log_path = os.path.join(args.run, "log.jsonl")

    ckpt = load_checkpoint(ckpt_path) if os.path.exists(ckpt_path) else None
    if ckpt:
        run_cfg = ckpt["run_config"]
        print("[train] resuming %s at step %d" % (ckpt_path, ckpt["step"]), file=sys.stderr)
    else:
        codec = dict(M.DEFAULT_CODEC)
        if args.codec_json:
            codec.update(json.load(open(args.codec_json)))
        _, vocab, rows, _ = codec_sizes(codec)
        mdict = dict(M.ModelConfig().to_dict(), **SIZES[args.size])
        if args.model_json:
            mdict.update(json.load(open(args.model_json)))
        mdict["vocab_size"] = rows
        run_cfg = {"model": mdict, "codec": codec, "size": args.size, "arch": args.arch,
                   "frontend": dict(M.DEFAULT_FRONTEND, segment_frames=D.SEGMENT_SAMPLES // features.HOP)}
        if args.arch == "hconv":
            hc = dict(H.DEFAULT_HCONV)
            if args.hconv_json:
                hc.update(json.load(open(args.hconv_json)))
            run_cfg["frontend"] = dict(H.DEFAULT_FRONTEND)
            run_cfg["hconv"] = hc
    if args.init_from and not ckpt:  # the exported model describes itself: take its sections
        with open(os.path.join(args.init_from, "config.json")) as f:
            icfg = json.load(f)
        run_cfg = {"model": icfg["model"], "codec": icfg["codec"], "size": args.size, "arch": "hconv",
                   "frontend": icfg["frontend"], "hconv": dict(icfg["hconv"])}
        if args.hconv_json:  # grow the model (wider / deeper conv front; see hconv.grow_from)
            run_cfg["hconv"].update(json.load(open(args.hconv_json)))
    num_classes, vocab, rows, prefix_end_id = codec_sizes(run_cfg["codec"])
    arch = run_cfg.get("arch", "mt3")

    def make_model(dropout, with_null_memory=True):
        mc = M.ModelConfig.from_dict(run_cfg["model"])
        if arch == "hconv":
            return H.HConvModel(mc, run_cfg["frontend"], run_cfg["hconv"], dropout=dropout,
                                with_null_memory=with_null_memory)
        return M.MT3Model(mc, dropout=dropout, with_null_memory=with_null_memory)

    # export / plot only
    if args.steps == 0 or (ckpt and ckpt["step"] >= args.steps and (args.export or args.plot)):
        if not ckpt:
            sys.exit("train: nothing to export: no checkpoint in %s" % args.run)
        model = make_model(0.0, with_null_memory=any("null_memory" in k for k in ckpt["model"]))
        model.load_state_dict(ckpt["model"])
        if args.export:
            export(model, run_cfg, ckpt, args)
        if args.plot and os.path.exists(log_path):
            plot_curve(log_path, args.plot)
        return

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    model = make_model(args.dropout)
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    if args.optimizer == "adafactor":
        opt = Adafactor(model.parameters(), lr=args.lr)
    else:
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98),
                                eps=1e-9)
    step = 0
    wall_before = 0.0
    init_cpu = 0.0
    if args.init_from and not ckpt:
        if arch != "hconv":
            sys.exit("train: --init-from needs --arch hconv")
        src, src_cfg = H.load_hconv(args.init_from)
        if src.hc != model.hc:
            try:
                H.grow_from(model, src)
            except ValueError as e:
                sys.exit("train: --init-from %s: %s" % (args.init_from, e))
            print("[train] grown from hconv %s to %s" % (
                {k: src.hc[k] for k in ("conv_channels", "key_channels", "res_layers")},
                {k: model.hc[k] for k in ("conv_channels", "key_channels", "res_layers")}), file=sys.stderr)
        else:
            missing = model.load_state_dict(src.state_dict(), strict=False)
            if missing.missing_keys or missing.unexpected_keys:
                sys.exit("train: --init-from %s: model shapes differ (%s)" % (args.init_from, missing))
        step = int(src_cfg.get("training", {}).get("steps", 0))
        wall_before = float(src_cfg.get("training", {}).get("wall_time_s", 0.0))
        init_cpu = float(src_cfg.get("training", {}).get("cpu_time_s", 0.0))
        print("[train] initialised from %s (step %d)" % (args.init_from, step), file=sys.stderr)
    if ckpt:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        wall_before = ckpt.get("wall_s", 0.0)
        torch.set_rng_state(ckpt["torch_rng"])
        random.setstate(ckpt["py_rng"])
        np.random.set_state(ckpt["np_rng"])
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    logmel = (H.LogFreq(run_cfg["frontend"]) if arch == "hconv" else features.LogMel()).to(device)
    fe_labels = run_cfg["frontend"] if arch == "hconv" else None
    valid_frames = H.frame_geometry(run_cfg["frontend"])[2] if arch == "hconv" else 0
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()

    # the data stream is re-seeded from (seed, step) so a resumed run does not replay its data
    stream = D.ShardStream(args.data, "train", seed=args.seed * 1000003 + step,
                           augment=None if args.no_augment else D.Augment(),
                           max_target_len=args.max_target_len, frontend=fe_labels)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, collate_fn=_single,
                                         num_workers=args.workers, persistent_workers=args.workers > 0,
                                         pin_memory=device.type == "cuda")
    val = []
    if D.list_shards(args.data, "validation"):
        val = D.fixed_examples(args.data, "validation", args.eval_examples, seed=args.seed, frontend=fe_labels)
    null_rng = np.random.default_rng([args.seed, step])
    print("[train] %s model %.2f M parameters, vocab rows %d, device %s%s, %d train shards, %d val examples" % (
        run_cfg["size"], n_params / 1e6, rows, device, " bf16" if use_bf16 else "", len(stream.paths), len(val)),
        file=sys.stderr)

    def forward(b, nm, inp, tgt, token_rows=None):
        """-> (logits or None, heads or None). hconv: heads for every item, tokens for token_rows."""
        feats = logmel(b["audio"].to(device, non_blocking=True))
        nmt = torch.from_numpy(nm).to(device)
        if arch != "hconv":
            return model(feats, inp, tgt, null_audio=nmt), None
        heads, mem = model.front(feats)
        if token_rows is None:
            token_rows = np.arange(len(nm))
        if len(token_rows) == 0:
            return None, heads
        r = torch.from_numpy(np.asarray(token_rows)).to(device)
        return model.t5(mem[r], inp, tgt, null_audio=nmt[r]), heads

    def evaluate():
        model.eval()
        out = {}
        if arch == "hconv":
            out.update(evaluate_heads())
        with torch.no_grad():
            for mode in ("audio", "null"):
                tot, n, acc = 0.0, 0.0, 0.0
                for i in range(0, len(val), args.batch_size):
                    b = D.collate(val[i:i + args.batch_size])
                    nm = np.full(len(b["ids"]), mode == "null")
                    inp, tgt, w = build_batch(b, nm, prefix_end_id, args.max_prefix, device)
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        logits, _ = forward(b, nm, inp, tgt)
                    loss, parts = weighted_loss(logits, tgt, w, args.z_loss)
                    tot += parts["ce"] * parts["tokens"]
                    acc += parts["acc"] * parts["tokens"]
                    n += parts["tokens"]
                if mode == "audio":
                    out.update(val_loss=tot / max(n, 1), val_acc=acc / max(n, 1))
                else:
                    out.update(val_null_loss=tot / max(n, 1), val_null_acc=acc / max(n, 1))
        model.train()
        return out

    def evaluate_heads():
        """Dense-head validation: BCE parts and a quick onset F1 (peak-picked onsets within +-3 frames
        (48 ms) of a labelled onset at the same key, greedy one-to-one) over the fixed examples."""
        tp = fp = fn = 0
        parts_sum = {}
        with torch.no_grad():
            for i in range(0, len(val), args.batch_size):
                b = D.collate(val[i:i + args.batch_size])
                heads = model.front(logmel(b["audio"].to(device)))[0]
                lab = {k: v.to(device) for k, v in b["labels"].items()}
                _, parts = H.dense_loss(heads, lab, valid_frames)
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + v * len(b["ids"])
                on = torch.sigmoid(heads[:, 0, :valid_frames]).cpu().numpy()
                ref = b["labels"]["onset"][:, :valid_frames].numpy()
                for e in range(on.shape[0]):
                    o = on[e]
                    left = np.vstack([np.zeros((1, o.shape[1])), o[:-1]])
                    right = np.vstack([o[1:], np.zeros((1, o.shape[1]))])
                    pk = (o >= 0.5) & (o >= left) & (o > right)
                    for p in range(o.shape[1]):
                        est = list(np.where(pk[:, p])[0])
                        gt = list(np.where(ref[e, :, p] > 0)[0])
                        used = set()
                        m = 0
                        for g in gt:
                            best = None
                            for k_, t in enumerate(est):
                                if k_ not in used and abs(t - g) <= 3 and (best is None or abs(t - g) < abs(est[best] - g)):
                                    best = k_
                            if best is not None:
                                used.add(best)
                                m += 1
                        tp += m
                        fp += len(est) - m
                        fn += len(gt) - m
        prec = tp / max(tp + fp, 1)
        rec = tp / max(tp + fn, 1)
        out = {"head_onset_f1": 2 * prec * rec / max(prec + rec, 1e-9), "head_onset_p": prec, "head_onset_r": rec}
        out.update({"val_dense_" + k: v / max(len(val), 1) for k, v in parts_sum.items()})
        return out

    def save_ckpt():
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "run_config": run_cfg, "args": vars(args), "wall_s": wall_before + time.time() - t_start,
                    "cpu_s": cpu_before + time.process_time() - cpu_start,
                    "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
                    "np_rng": np.random.get_state(), "hardware": hardware(device),
                    "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None}, tmp)
        os.replace(tmp, ckpt_path)

    logf = open(log_path, "a")
    model.train()
    t_start = time.time()
    cpu_start = time.process_time()
    cpu_before = ckpt.get("cpu_s", 0.0) if ckpt else init_cpu
    t_log, ex_since, tok_since = time.time(), 0, 0
    it = bucketed_batches(iter(loader), args.batch_size, args.bucket_pool, args.null_prob, args.max_prefix,
                          null_rng)
    while step < args.steps:
        batch, null_mask = next(it)
        B = len(batch["ids"])
        rows = None
        if arch == "hconv":
            n_tok = int(round(B * args.token_frac))
            rows = np.sort(null_rng.permutation(B)[:n_tok])
            inp = tgt = w = None
            if n_tok:
                sub = {"targets": batch["targets"][torch.from_numpy(rows)], "prev": [batch["prev"][i] for i in rows]}
                inp, tgt, w = build_batch(sub, null_mask[rows], prefix_end_id, args.max_prefix, device)
        else:
            inp, tgt, w = build_batch(batch, null_mask, prefix_end_id, args.max_prefix, device)
        lr = lr_at(step, args)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits, heads = forward(batch, null_mask, inp, tgt, rows)
        if logits is not None:
            loss, parts = weighted_loss(logits, tgt, w, args.z_loss)
            loss = loss * (args.token_weight if arch == "hconv" else 1.0)
        else:
            loss, parts = torch.zeros((), device=device), {"ce": 0.0, "z": 0.0, "acc": 0.0, "tokens": 0.0}
        if heads is not None:
            lab = {k: v.to(device) for k, v in batch["labels"].items()}
            dl, dparts = H.dense_loss(heads.float(), lab, valid_frames)
            loss = loss + dl
            parts.update({"dense_" + k: v for k, v in dparts.items()})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip) if args.grad_clip else 0.0
        opt.step()
        step += 1
        ex_since += B
        tok_since += int(parts["tokens"])
        if step % args.log_every == 0 or step == args.steps:
            el = time.time() - t_log
            rec = {"kind": "train", "step": step, "loss": float(loss), "ce": parts["ce"], "z": parts["z"],
                   "acc": parts["acc"], "lr": lr, "grad_norm": float(gnorm), "examples_per_s": ex_since / el,
                   "tokens_per_s": tok_since / el, "wall_s": round(wall_before + time.time() - t_start, 2),
                   "cpu_s": round(cpu_before + time.process_time() - cpu_start, 1)}
            rec.update({k: v for k, v in parts.items() if k.startswith("dense_")})
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            print("[train] step %d loss %.4f ce %.4f acc %.3f  %.2f ex/s" % (
                step, rec["loss"], rec["ce"], rec["acc"], rec["examples_per_s"]), file=sys.stderr)
            t_log, ex_since, tok_since = time.time(), 0, 0
        stop = bool(args.time_limit_s) and time.time() - t_start > args.time_limit_s
        if val and (step % args.eval_every == 0 or step == args.steps or stop):
            rec = dict(kind="eval", step=step, wall_s=round(wall_before + time.time() - t_start, 2), **evaluate())
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            print("[train] eval step %d val_loss %.4f val_acc %.3f null_acc %.3f%s" % (
                step, rec["val_loss"], rec["val_acc"], rec["val_null_acc"],
                "  head onset F1 %.3f (P %.3f R %.3f)" % (rec["head_onset_f1"], rec["head_onset_p"], rec["head_onset_r"])
                if "head_onset_f1" in rec else ""), file=sys.stderr)
        if step % args.ckpt_every == 0:
            save_ckpt()
        if stop:
            print("[train] time limit reached at step %d" % step, file=sys.stderr)
            break
    save_ckpt()
    logf.close()
    plot_curve(log_path, os.path.join(args.run, "learning_curve.png"))
    if args.plot:
        plot_curve(log_path, args.plot)
    if args.export:
        model.eval()
        export(model, run_cfg, load_checkpoint(ckpt_path), args)


def export(model, run_cfg, ckpt, args):
    split_json = os.path.join(HERE, "split.json")
    a = ckpt.get("args", {})
    training = {
        "steps": ckpt["step"],
        "batch_size": a.get("batch_size"),
        "optimizer": a.get("optimizer"),
        "learning_rate": a.get("lr"),
        "z_loss": a.get("z_loss"),
        "dropout": a.get("dropout"),
        "null_prob": a.get("null_prob"),
        "seed": a.get("seed"),
        "wall_time_s": round(ckpt.get("wall_s", 0.0), 1),
        "hardware": ckpt.get("hardware"),
        "git_commit": git_commit(),
        "data": data_summary(a.get("data") or args.data),
        "split": {"file": "tools/train/split.json",
                  "sha256": sha256_file(split_json) if os.path.exists(split_json) else None,
                  "rule": json.load(open(split_json)).get("rule") if os.path.exists(split_json) else None},
        "prefix_end_id": codec_sizes(run_cfg["codec"])[3],
        "null_memory": "target/decoder/null_memory",
        "exported_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "recipe": "docs/training.md",
    }
    name = "%s-step%d" % (args.name or "tunescribe-" + run_cfg.get("size", "custom"), ckpt["step"])
    if run_cfg.get("arch") == "hconv":
        training["arch"] = "hconv"
        training["token_frac"] = a.get("token_frac")
        training["cpu_time_s"] = round(ckpt.get("cpu_s", 0.0), 1)
        H.save_hconv(model, args.export, name, run_cfg["codec"], training, dtype=args.export_dtype,
                     decoding=json.load(open(args.decoding_json)) if args.decoding_json else None)
    else:
        M.save_model(model, args.export, name=name, frontend=run_cfg["frontend"], codec=run_cfg["codec"],
                     training=training, dtype=args.export_dtype)
    print("[train] exported %s to %s" % (name, args.export), file=sys.stderr)


if __name__ == "__main__":
    main()
