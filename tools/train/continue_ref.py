#!/usr/bin/python3
"""Reference of the "continue without audio" decoding (docs/training.md §5) for `tunescribe generate`:
with the learned null memory, feed BOS, the previous segment's tokens (without EOS) and PREFIX_END,
then sample the next segment's tokens until EOS. Segment after segment, each output becomes the
next prefix. Prints one JSON line per segment: {"segment": k, "tokens": [...]}.

  continue_ref.py MODEL_DIR [--segments 4] [--temperature 1.0] [--top-k 0] [--seed 0]
                  [--prefix "1134 1"]   # tokens of a previous segment (default: none)
"""
import argparse
import json

import torch

from tunescribe_train import mt3_model as M  # noqa: E402
from tunescribe_train import trainer as T  # noqa: E402


@torch.no_grad()
def continue_segment(model, prefix, prefix_end_id, max_tokens=1024, temperature=1.0, top_k=0, generator=None):
    """prefix: previous segment's ids without EOS -> the new segment's ids (ending with EOS if produced)."""
    mem = model.null_memory_batch(1)
    fed = [M.PAD_ID] + list(prefix) + [prefix_end_id]
    cache = model._start_cache(mem, len(fed) + max_tokens)
    logits = None
    for pos, tok in enumerate(fed):
        logits = model._step(cache, torch.tensor([tok]), pos)
    out = []
    pos = len(fed)
    while len(out) < max_tokens:
        lg = logits[0].float()
        if temperature <= 0:
            nxt = int(lg.argmax())
        else:
            lg = lg / temperature
            if top_k > 0:
                kth = torch.topk(lg, top_k).values[-1]
                lg = torch.where(lg < kth, torch.full_like(lg, -1e10), lg)
            nxt = int(torch.multinomial(torch.softmax(lg, -1), 1, generator=generator))
        out.append(nxt)
        if nxt == M.EOS_ID:
            break
        logits = model._step(cache, torch.tensor([nxt]), pos)
        pos += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--prefix", default="", help="space-separated ids of the previous segment")
    args = ap.parse_args()
    model, cfg = M.load_model(args.model_dir)
    model.eval()
    prefix_end_id = cfg.get("training", {}).get("prefix_end_id") or T.codec_sizes(cfg["codec"])[3]
    g = torch.Generator().manual_seed(args.seed)
    prefix = [int(t) for t in args.prefix.split()]
    if prefix and prefix[-1] == M.EOS_ID:
        prefix = prefix[:-1]
    for k in range(args.segments):
        toks = continue_segment(model, prefix, prefix_end_id, args.max_tokens, args.temperature, args.top_k, g)
        print(json.dumps({"segment": k, "tokens": toks}))
        prefix = toks[:-1] if toks and toks[-1] == M.EOS_ID else toks


if __name__ == "__main__":
    main()
