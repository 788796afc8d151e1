#!/usr/bin/python3
"""Tests of tools/train/tunescribe_train/mt3_model.py (the PyTorch reference T5):

  PYTHONPATH=tools/train /usr/bin/python3 tests/python/test_mt3_model.py   # exit 0 = pass (CTest: Mt3ModelPython)
"""
import torch

from tunescribe_train import mt3_model as M


def test_mt3_model():
    """Quick check: training step with dropout + z_loss, bf16 autocast, cached == uncached greedy."""
    torch.manual_seed(0)
    cfg = M.ModelConfig(d_model=32, num_heads=2, head_dim=12, mlp_dim=48, num_encoder_layers=1,
                        num_decoder_layers=2, input_depth=16, vocab_size=128, max_positions=64)
    m = M.MT3Model(cfg, dropout=0.1)
    mel = torch.randn(3, 20, 16)
    tgt = torch.randint(3, 128, (3, 10))
    tgt[0, 7:] = M.PAD_ID
    inp = torch.cat([torch.zeros(3, 1, dtype=torch.long), tgt[:, :-1]], 1)
    m.train()
    loss, parts = M.loss_fn(m(mel, inp, tgt, null_audio=torch.tensor([False, True, False])), tgt)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters()), "a parameter gets no gradient"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_bf16, _ = M.loss_fn(m(mel, inp, tgt), tgt)
    assert torch.isfinite(loss_bf16)
    m.eval()
    mem = m.encode(mel)
    assert m.greedy(mem, 12) == m.greedy(mem, 12, use_cache=False)
    print(f"mt3_model self-test ok: loss {float(loss):.3f} (ce {parts['ce']:.3f}), bf16 loss {float(loss_bf16):.3f}")



if __name__ == "__main__":
    test_mt3_model()
