"""The training loop of tunescribe's models (train.py is its command line; docs/training.md the recipe).

What it does: run(args) resumes or starts a run directory (checkpoint.pt, log.jsonl,
learning_curve.png), trains to --steps or --time-limit-s, and exports the model directory;
Trainer holds one run (model, optimizer, data stream, validation examples); the set-up steps
(run_config, make_model, make_optimizer, init_from_model, resume) and the batch/loss helpers are
separate functions. Runs unchanged on CPU (Debian python3-torch 1.13) and on a CUDA GPU with a
current PyTorch (bf16 autocast there).
What it does not: parse flags (train.py), render data (render.py), score models (evaluate.py).

Objective (mt3.md §3.6): teacher-forced cross-entropy on non-pad target tokens + z_loss 1e-4 *
logsumexp^2; AdamW (default) or Adafactor (decay 0.8, no momentum, update clipping 1.0).
"Continue without audio" (for `tunescribe generate`): with probability --null-prob an example's
encoder output is replaced by the learned `null_memory` and the decoder sequence is
  BOS, <previous segment's tokens without EOS>, PREFIX_END, <target tokens>, EOS
with PREFIX_END = the first extra id (3 + codec classes; 1391 for the mt3 codec) and loss only on
the target tokens (and EOS). Examples with audio keep the plain MT3 sequence BOS, targets, EOS.
hconv models add the dense-head BCE (hconv.dense_loss) on every item and put tokens on a
--token-frac share of each batch.
Checkpoints (run/checkpoint.pt: model, optimizer, step, RNG states, elapsed wall time) every
--ckpt-every steps and at the end; a run resumes from it automatically. Logs: run/log.jsonl
(one JSON object per logged train step and per evaluation), run/learning_curve.png.
"""
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

from . import REPO, TOOLS_DIR
from . import dataset as D
from . import features
from . import hconv as H
from . import mt3_model as M

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


# ---------------------------------------------------------------------------------------------
# set-up: run configuration, model, optimizer, initial weights

def pick_device(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    return torch.device("cuda" if (args.device == "auto" and torch.cuda.is_available()) else
                        ("cpu" if args.device == "auto" else args.device))


def run_config(args, ckpt):
    """The run's model/codec/front-end sections: from the checkpoint when resuming, else from the
    --init-from model's config.json (grown by --hconv-json), else from the flags."""
    if ckpt:
        return ckpt["run_config"]
    if args.init_from:  # the exported model describes itself: take its sections
        with open(os.path.join(args.init_from, "config.json")) as f:
            icfg = json.load(f)
        run_cfg = {"model": icfg["model"], "codec": icfg["codec"], "size": args.size, "arch": "hconv",
                   "frontend": icfg["frontend"], "hconv": dict(icfg["hconv"])}
        if args.hconv_json:  # grow the model (wider / deeper conv front; see hconv.grow_from)
            run_cfg["hconv"].update(json.load(open(args.hconv_json)))
        return run_cfg
    codec = dict(M.DEFAULT_CODEC)
    if args.codec_json:
        codec.update(json.load(open(args.codec_json)))
    rows = codec_sizes(codec)[2]
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
    return run_cfg


def make_model(run_cfg, dropout, with_null_memory=True):
    mc = M.ModelConfig.from_dict(run_cfg["model"])
    if run_cfg.get("arch", "mt3") == "hconv":
        return H.HConvModel(mc, run_cfg["frontend"], run_cfg["hconv"], dropout=dropout,
                            with_null_memory=with_null_memory)
    return M.MT3Model(mc, dropout=dropout, with_null_memory=with_null_memory)


def make_optimizer(model, args):
    if args.optimizer == "adafactor":
        return Adafactor(model.parameters(), lr=args.lr)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98), eps=1e-9)


def init_from_model(model, args):
    """Copy (or grow, hconv.grow_from) the weights of the --init-from model directory;
    -> (step, wall s, CPU s) the run continues from."""
    if not isinstance(model, H.HConvModel):
        sys.exit("train: --init-from needs --arch hconv")
    src, src_cfg = H.load_hconv(args.init_from)
    if src.hc != model.hc:
        try:
            H.grow_from(model, src)
        except ValueError as e:
            sys.exit("train: --init-from %s: %s" % (args.init_from, e))
        keys = ("conv_channels", "key_channels", "res_layers")
        print("[train] grown from hconv %s to %s" % ({k: src.hc[k] for k in keys}, {k: model.hc[k] for k in keys}),
              file=sys.stderr)
    else:
        missing = model.load_state_dict(src.state_dict(), strict=False)
        if missing.missing_keys or missing.unexpected_keys:
            sys.exit("train: --init-from %s: model shapes differ (%s)" % (args.init_from, missing))
    tr = src_cfg.get("training", {})
    step = int(tr.get("steps", 0))
    print("[train] initialised from %s (step %d)" % (args.init_from, step), file=sys.stderr)
    return step, float(tr.get("wall_time_s", 0.0)), float(tr.get("cpu_time_s", 0.0))


def resume(model, opt, ckpt, device):
    """Weights, optimizer and RNG states of a checkpoint; -> (step, wall s, CPU s)."""
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["torch_rng"])
    random.setstate(ckpt["py_rng"])
    np.random.set_state(ckpt["np_rng"])
    if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    return ckpt["step"], ckpt.get("wall_s", 0.0), ckpt.get("cpu_s", 0.0)


def export_only(args, ckpt, run_cfg, log_path):
    """--steps 0 (or a finished run): export and/or plot the latest checkpoint."""
    if not ckpt:
        sys.exit("train: nothing to export: no checkpoint in %s" % args.run)
    model = make_model(run_cfg, 0.0, with_null_memory=any("null_memory" in k for k in ckpt["model"]))
    model.load_state_dict(ckpt["model"])
    if args.export:
        export(model, run_cfg, ckpt, args)
    if args.plot and os.path.exists(log_path):
        plot_curve(log_path, args.plot)


# ---------------------------------------------------------------------------------------------
# the training loop

class Trainer:
    """One run: model + optimizer + data stream + fixed validation examples; train(), evaluate(),
    checkpoints and the JSON-lines log."""

    def __init__(self, args, run_cfg, ckpt, device, ckpt_path, log_path):
        self.args, self.run_cfg, self.device = args, run_cfg, device
        self.ckpt_path, self.log_path = ckpt_path, log_path
        self.arch = run_cfg.get("arch", "mt3")
        self.prefix_end_id = codec_sizes(run_cfg["codec"])[3]
        random.seed(args.seed)
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)
        self.model = make_model(run_cfg, args.dropout).to(device)
        self.opt = make_optimizer(self.model, args)
        self.step, self.wall_before, self.cpu_before = 0, 0.0, 0.0
        if args.init_from and not ckpt:
            self.step, self.wall_before, self.cpu_before = init_from_model(self.model, args)
        if ckpt:
            self.step, self.wall_before, self.cpu_before = resume(self.model, self.opt, ckpt, device)
        hconv = self.arch == "hconv"
        self.logmel = (H.LogFreq(run_cfg["frontend"]) if hconv else features.LogMel()).to(device)
        fe_labels = run_cfg["frontend"] if hconv else None
        self.valid_frames = H.frame_geometry(run_cfg["frontend"])[2] if hconv else 0
        self.use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        # the data stream is re-seeded from (seed, step) so a resumed run does not replay its data
        self.stream = D.ShardStream(args.data, "train", seed=args.seed * 1000003 + self.step,
                                    augment=None if args.no_augment else D.Augment(),
                                    max_target_len=args.max_target_len, frontend=fe_labels)
        self.loader = torch.utils.data.DataLoader(self.stream, batch_size=None, collate_fn=_single,
                                                  num_workers=args.workers, persistent_workers=args.workers > 0,
                                                  pin_memory=device.type == "cuda")
        self.val = []
        if D.list_shards(args.data, "validation"):
            self.val = D.fixed_examples(args.data, "validation", args.eval_examples, seed=args.seed,
                                        frontend=fe_labels)
        self.null_rng = np.random.default_rng([args.seed, self.step])
        n_params = sum(p.numel() for p in self.model.parameters())
        print("[train] %s model %.2f M parameters, vocab rows %d, device %s%s, %d train shards, %d val examples" % (
            run_cfg["size"], n_params / 1e6, run_cfg["model"]["vocab_size"], device,
            " bf16" if self.use_bf16 else "", len(self.stream.paths), len(self.val)), file=sys.stderr)

    def forward(self, b, nm, inp, tgt, token_rows=None):
        """-> (logits or None, heads or None). hconv: heads for every item, tokens for token_rows."""
        feats = self.logmel(b["audio"].to(self.device, non_blocking=True))
        nmt = torch.from_numpy(nm).to(self.device)
        if self.arch != "hconv":
            return self.model(feats, inp, tgt, null_audio=nmt), None
        heads, mem = self.model.front(feats)
        if token_rows is None:
            token_rows = np.arange(len(nm))
        if len(token_rows) == 0:
            return None, heads
        r = torch.from_numpy(np.asarray(token_rows)).to(self.device)
        return self.model.t5(mem[r], inp, tgt, null_audio=nmt[r]), heads

    def evaluate(self):
        """Validation token CE/accuracy with audio and with the null memory (+ dense heads, hconv)."""
        a = self.args
        self.model.eval()
        out = self.evaluate_heads() if self.arch == "hconv" else {}
        with torch.no_grad():
            for mode in ("audio", "null"):
                tot, n, acc = 0.0, 0.0, 0.0
                for i in range(0, len(self.val), a.batch_size):
                    b = D.collate(self.val[i:i + a.batch_size])
                    nm = np.full(len(b["ids"]), mode == "null")
                    inp, tgt, w = build_batch(b, nm, self.prefix_end_id, a.max_prefix, self.device)
                    with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
                        logits, _ = self.forward(b, nm, inp, tgt)
                    _, parts = weighted_loss(logits, tgt, w, a.z_loss)
                    tot += parts["ce"] * parts["tokens"]
                    acc += parts["acc"] * parts["tokens"]
                    n += parts["tokens"]
                key = "val" if mode == "audio" else "val_null"
                out.update({key + "_loss": tot / max(n, 1), key + "_acc": acc / max(n, 1)})
        self.model.train()
        return out

    def evaluate_heads(self):
        """Dense-head validation: BCE parts and a quick onset F1 (peak-picked onsets within +-3 frames
        (48 ms) of a labelled onset at the same key, greedy one-to-one) over the fixed examples."""
        counts = np.zeros(3, np.int64)  # tp, fp, fn
        parts_sum = {}
        vf = self.valid_frames
        with torch.no_grad():
            for i in range(0, len(self.val), self.args.batch_size):
                b = D.collate(self.val[i:i + self.args.batch_size])
                heads = self.model.front(self.logmel(b["audio"].to(self.device)))[0]
                lab = {k: v.to(self.device) for k, v in b["labels"].items()}
                _, parts = H.dense_loss(heads, lab, vf)
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + v * len(b["ids"])
                on = torch.sigmoid(heads[:, 0, :vf]).cpu().numpy()
                ref = b["labels"]["onset"][:, :vf].numpy()
                for e in range(on.shape[0]):
                    counts += onset_match_counts(on[e], ref[e])
        tp, fp, fn = (int(c) for c in counts)
        prec = tp / max(tp + fp, 1)
        rec = tp / max(tp + fn, 1)
        out = {"head_onset_f1": 2 * prec * rec / max(prec + rec, 1e-9), "head_onset_p": prec, "head_onset_r": rec}
        out.update({"val_dense_" + k: v / max(len(self.val), 1) for k, v in parts_sum.items()})
        return out

    def save_ckpt(self):
        tmp = self.ckpt_path + ".tmp"
        torch.save({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
                    "run_config": self.run_cfg, "args": vars(self.args), "wall_s": self.wall_s(),
                    "cpu_s": self.cpu_s(), "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
                    "np_rng": np.random.get_state(), "hardware": hardware(self.device),
                    "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None}, tmp)
        os.replace(tmp, self.ckpt_path)

    def wall_s(self):
        return self.wall_before + time.time() - self.t_start

    def cpu_s(self):
        return self.cpu_before + time.process_time() - self.cpu_start

    def train_step(self, batch, null_mask):
        """One optimizer step; -> (loss, parts, lr, grad norm)."""
        a, dev = self.args, self.device
        B = len(batch["ids"])
        rows = None
        if self.arch == "hconv":  # dense heads on every item, tokens on a --token-frac share
            n_tok = int(round(B * a.token_frac))
            rows = np.sort(self.null_rng.permutation(B)[:n_tok])
            inp = tgt = w = None
            if n_tok:
                sub = {"targets": batch["targets"][torch.from_numpy(rows)], "prev": [batch["prev"][i] for i in rows]}
                inp, tgt, w = build_batch(sub, null_mask[rows], self.prefix_end_id, a.max_prefix, dev)
        else:
            inp, tgt, w = build_batch(batch, null_mask, self.prefix_end_id, a.max_prefix, dev)
        lr = lr_at(self.step, a)
        for g in self.opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=self.use_bf16):
            logits, heads = self.forward(batch, null_mask, inp, tgt, rows)
        if logits is not None:
            loss, parts = weighted_loss(logits, tgt, w, a.z_loss)
            loss = loss * (a.token_weight if self.arch == "hconv" else 1.0)
        else:
            loss, parts = torch.zeros((), device=dev), {"ce": 0.0, "z": 0.0, "acc": 0.0, "tokens": 0.0}
        if heads is not None:
            lab = {k: v.to(dev) for k, v in batch["labels"].items()}
            dl, dparts = H.dense_loss(heads.float(), lab, self.valid_frames)
            loss = loss + dl
            parts.update({"dense_" + k: v for k, v in dparts.items()})
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), a.grad_clip) if a.grad_clip else 0.0
        self.opt.step()
        self.step += 1
        return loss, parts, lr, gnorm

    def log(self, rec):
        self.logf.write(json.dumps(rec) + "\n")
        self.logf.flush()

    def train(self):
        a = self.args
        self.logf = open(self.log_path, "a")
        self.model.train()
        self.t_start, self.cpu_start = time.time(), time.process_time()
        t_log, ex_since, tok_since = time.time(), 0, 0
        it = bucketed_batches(iter(self.loader), a.batch_size, a.bucket_pool, a.null_prob, a.max_prefix,
                              self.null_rng)
        while self.step < a.steps:
            batch, null_mask = next(it)
            loss, parts, lr, gnorm = self.train_step(batch, null_mask)
            step = self.step
            ex_since += len(batch["ids"])
            tok_since += int(parts["tokens"])
            if step % a.log_every == 0 or step == a.steps:
                el = time.time() - t_log
                rec = {"kind": "train", "step": step, "loss": float(loss), "ce": parts["ce"], "z": parts["z"],
                       "acc": parts["acc"], "lr": lr, "grad_norm": float(gnorm), "examples_per_s": ex_since / el,
                       "tokens_per_s": tok_since / el, "wall_s": round(self.wall_s(), 2),
                       "cpu_s": round(self.cpu_s(), 1)}
                rec.update({k: v for k, v in parts.items() if k.startswith("dense_")})
                self.log(rec)
                print("[train] step %d loss %.4f ce %.4f acc %.3f  %.2f ex/s" % (
                    step, rec["loss"], rec["ce"], rec["acc"], rec["examples_per_s"]), file=sys.stderr)
                t_log, ex_since, tok_since = time.time(), 0, 0
            stop = bool(a.time_limit_s) and time.time() - self.t_start > a.time_limit_s
            if self.val and (step % a.eval_every == 0 or step == a.steps or stop):
                self.log_eval()
            if step % a.ckpt_every == 0:
                self.save_ckpt()
            if stop:
                print("[train] time limit reached at step %d" % step, file=sys.stderr)
                break
        self.save_ckpt()
        self.logf.close()

    def log_eval(self):
        rec = dict(kind="eval", step=self.step, wall_s=round(self.wall_s(), 2), **self.evaluate())
        self.log(rec)
        print("[train] eval step %d val_loss %.4f val_acc %.3f null_acc %.3f%s" % (
            self.step, rec["val_loss"], rec["val_acc"], rec["val_null_acc"],
            "  head onset F1 %.3f (P %.3f R %.3f)" % (rec["head_onset_f1"], rec["head_onset_p"], rec["head_onset_r"])
            if "head_onset_f1" in rec else ""), file=sys.stderr)


def onset_match_counts(on, ref, threshold=0.5, tolerance=3):
    """on [T, 88] onset probabilities, ref [T, 88] 0/1 labels -> (tp, fp, fn): local-maximum peaks
    >= threshold matched one-to-one to labelled onsets of the same key within +-tolerance frames,
    nearest first in label order."""
    left = np.vstack([np.zeros((1, on.shape[1])), on[:-1]])
    right = np.vstack([on[1:], np.zeros((1, on.shape[1]))])
    pk = (on >= threshold) & (on >= left) & (on > right)
    tp = fp = fn = 0
    for p in range(on.shape[1]):
        est = list(np.where(pk[:, p])[0])
        gt = list(np.where(ref[:, p] > 0)[0])
        used = set()
        m = 0
        for g in gt:
            best = None
            for k, t in enumerate(est):
                if k not in used and abs(t - g) <= tolerance and (best is None or abs(t - g) < abs(est[best] - g)):
                    best = k
            if best is not None:
                used.add(best)
                m += 1
        tp += m
        fp += len(est) - m
        fn += len(gt) - m
    return np.array([tp, fp, fn], np.int64)


def run(args):
    """train.py's whole job: resume or start a run, train to --steps (or --time-limit-s), plot,
    export; or only export/plot (--steps 0)."""
    device = pick_device(args)
    os.makedirs(args.run, exist_ok=True)
    ckpt_path = os.path.join(args.run, "checkpoint.pt")
    log_path = os.path.join(args.run, "log.jsonl")
    ckpt = load_checkpoint(ckpt_path) if os.path.exists(ckpt_path) else None
    if ckpt:
        print("[train] resuming %s at step %d" % (ckpt_path, ckpt["step"]), file=sys.stderr)
    run_cfg = run_config(args, ckpt)
    if args.steps == 0 or (ckpt and ckpt["step"] >= args.steps and (args.export or args.plot)):
        return export_only(args, ckpt, run_cfg, log_path)
    t = Trainer(args, run_cfg, ckpt, device, ckpt_path, log_path)
    t.train()
    plot_curve(log_path, os.path.join(args.run, "learning_curve.png"))
    if args.plot:
        plot_curve(log_path, args.plot)
    if args.export:
        t.model.eval()
        export(t.model, run_cfg, load_checkpoint(ckpt_path), args)


def export(model, run_cfg, ckpt, args):
    split_json = os.path.join(TOOLS_DIR, "split.json")
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
