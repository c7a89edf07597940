#!/usr/bin/python3
"""nielsennet_ref.py OUT.safetensors — the PyTorch reference for deeper's
NielsenNet (tests/test_trainer_parity.c runs it at test time; deterministic).

It writes one safetensors file (safetensors_np.py: numpy + json) with:
  <name>                initial weights under deeper's names (conv1.weight ...)
  pixels, labels        one batch: uint8 [32,28,28,1] NHWC, int32 [32]
  logits, loss          step 0 forward (training mode: dropout on)
  grad.<name>           step 0 gradients of the data loss (softmax cross-entropy,
                        label smoothing 0.1, mean over the batch)
  losses                data loss at each of 10 steps (float32 [10])
  step10.<name>         weights after 10 updates of TF's RMSProp, written here
                        independently from TF's formulas:
                          g   = grad + wd * w          (wd = 4e-5, weights only)
                          ms  = 0.9 ms + 0.1 g^2       (ms starts at 1)
                          mom = 0.9 mom + lr g / sqrt(ms + 1.0)
                          w  -= mom                    (lr = 0.01)
Dropout (keep 0.5) uses deeper's mask rule (trainer/backend.h): Philox4x32-10
keyed by a per-step, per-layer seed, one block per 4 elements; it is
reimplemented here so the masks are checked too.  The seeds follow
trainer/tower.c and trainer/graph.c: step_seed = mix(mix(1, RNG_WHAT_DROPOUT=5),
step), layer seed = mix(step_seed, node index) with NielsenNet's dropout nodes
at indices 8 and 11 of its node list.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

M64 = (1 << 64) - 1


def mix(a, b):
    """shared/rng.c rng_mix (splitmix64-style finaliser)."""
    z = a ^ ((b + 0x9E3779B97F4A7C15 + ((a << 6) & M64) + (a >> 2)) & M64)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def philox(blocks, seed):
    """Philox4x32-10 of counters (blk lo, blk hi, 0, 0) under key (seed lo, seed hi)."""
    m32 = np.uint64(0xFFFFFFFF)
    c0 = blocks & m32
    c1 = blocks >> np.uint64(32)
    c2 = np.zeros_like(c0)
    c3 = np.zeros_like(c0)
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        n0 = (p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0)
        n1 = p1 & m32
        n2 = (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1)
        n3 = p0 & m32
        c0, c1, c2, c3 = n0, n1, n2, n3
        k0 = (k0 + 0x9E3779B9) & 0xFFFFFFFF
        k1 = (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return np.stack([c0, c1, c2, c3], axis=1)


def dropout_mask(shape, seed, keep, stream=0):
    n = int(np.prod(shape))
    j = np.arange(n, dtype=np.uint64) + np.uint64(stream)
    blocks = np.unique(j // np.uint64(4))
    out = philox(blocks, seed)
    words = out[(j // np.uint64(4) - blocks[0]).astype(np.int64), (j % np.uint64(4)).astype(np.int64)]
    u = (words >> np.uint64(8)).astype(np.float64) * (1.0 / 16777216.0)
    return torch.from_numpy((u < keep).reshape(shape).astype(np.float32))


def main():
    out = sys.argv[1]
    torch.manual_seed(1234)
    torch.set_num_threads(1)
    names = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
             "fc2.weight", "fc2.bias", "fc.weight", "fc.bias"]
    mods = [torch.nn.Conv2d(1, 20, 5, padding=2), torch.nn.Conv2d(20, 40, 5),
            torch.nn.Linear(1000, 1000), torch.nn.Linear(1000, 1000), torch.nn.Linear(1000, 10)]
    params = []
    for m in mods:
        # non-zero biases so their gradients and updates are exercised
        with torch.no_grad():
            m.bias.uniform_(-0.1, 0.1)
        params += [m.weight, m.bias]
    w = {n: p.detach().clone().requires_grad_(True) for n, p in zip(names, params)}

    rs = np.random.RandomState(7)
    B, keep, lr, wd, smooth = 32, 0.5, 0.01, 4e-5, 0.1
    pixels = rs.randint(0, 256, size=(B, 28, 28, 1)).astype(np.uint8)
    labels = rs.randint(0, 10, size=(B,)).astype(np.int32)
    x = torch.from_numpy(pixels.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    x = (x / 255.0 - 0.5) * 2.0
    y = torch.from_numpy(labels.astype(np.int64))

    def forward(step):
        s = mix(mix(1, 5), step)
        h = F.max_pool2d(F.relu(F.conv2d(x, w["conv1.weight"], w["conv1.bias"], padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, w["conv2.weight"], w["conv2.bias"])), 2)
        h = F.relu(F.linear(h.flatten(1), w["fc1.weight"], w["fc1.bias"]))
        h = h * dropout_mask(h.shape, mix(s, 8), keep) / keep
        h = F.relu(F.linear(h, w["fc2.weight"], w["fc2.bias"]))
        h = h * dropout_mask(h.shape, mix(s, 11), keep) / keep
        return F.linear(h, w["fc.weight"], w["fc.bias"])

    res = {n: w[n].detach().numpy().copy() for n in names}
    res["pixels"], res["labels"] = pixels, labels
    ms = {n: torch.ones_like(w[n]) for n in names}
    mom = {n: torch.zeros_like(w[n]) for n in names}
    losses = []
    for step in range(10):
        logits = forward(step)
        loss = F.cross_entropy(logits, y, label_smoothing=smooth)
        for n in names:
            w[n].grad = None
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            res["logits"] = logits.detach().numpy().copy()
            res["loss"] = np.array([loss.item()], dtype=np.float32)
            for n in names:
                res["grad." + n] = w[n].grad.numpy().copy()
        with torch.no_grad():
            for n in names:
                g = w[n].grad + (wd * w[n] if n.endswith("weight") else 0)
                ms[n] = 0.9 * ms[n] + 0.1 * g * g
                mom[n] = 0.9 * mom[n] + lr * g / torch.sqrt(ms[n] + 1.0)
                w[n] -= mom[n]
    res["losses"] = np.array(losses, dtype=np.float32)
    for n in names:
        res["step10." + n] = w[n].detach().numpy().copy()
    st.save(out, res)


if __name__ == "__main__":
    main()
