#!/usr/bin/python3
"""inception_bn_diag.py -- why does a short Inception v3 run evaluate badly?

Loads one deeper checkpoint (model.ckpt-STEP.safetensors) into torchvision's
inception_v3 (an independent implementation of the same network) and
evaluates the first N Fashion-MNIST test images four ways:

    raw / ema   the trained weights, or their EMA shadows ("ema/<name>", what
                `deeper eval` uses; the shadows include the BN statistics)
    running     eval-mode BN with the checkpoint's running statistics
    batch       BN with the statistics of the evaluated batch (train mode,
                dropout off, running statistics untouched)
    recal       running statistics re-estimated from 512 training images
                with the given weights (cumulative average, eval mode after)

and prints how far the running statistics have moved from their initial
0 / 1 compared with the batch statistics they are meant to track.

Preprocessing follows `deeper eval`: central crop 0.875 (TF's integer
offsets), bilinear resize to the model's size, [-1, 1], gray repeated into
three channels.  It is a diagnostic for scripts/bench/inception_fmnist/run, not a
test.

Usage: inception_bn_diag.py CHECKPOINT.safetensors [NVAL] [IMAGE_SIZE]
"""
import gzip
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ref"))
import safetensors_np  # noqa: E402

FMNIST = "/usr/share/datasets/fashion-mnist"


def idx(name, n):
    with gzip.open(os.path.join(FMNIST, name)) as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xff
    dims = list(struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim]))
    a = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    return a[:n]


def prep(imgs, size):
    h = imgs.shape[1]
    s = int((h - 0.875 * h) / 2)
    x = torch.from_numpy(imgs[:, s:h - s, s:h - s].astype(np.float32))[:, None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x / 255.0 * 2.0 - 1.0
    return x.repeat(1, 3, 1, 1)


def load(path, ema, classes):
    t, _ = safetensors_np.load(path)
    m = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                        num_classes=classes)
    sd = m.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        key = ("ema/" + k) if ema and ("ema/" + k) in t else k
        sd[k] = torch.from_numpy(np.asarray(t[key], np.float32).copy())
    m.load_state_dict(sd)
    m.aux_logits, m.AuxLogits = False, None   # below 299 the aux head does not run
    return m, t


def bn_modules(m):
    return [(n, mod) for n, mod in m.named_modules() if isinstance(mod, torch.nn.BatchNorm2d)
            and not n.startswith("AuxLogits")]


def evaluate(m, x, y, mode, bs=100):
    m.eval()
    if mode == "batch":
        for _, b in bn_modules(m):
            b.train()
            b.track_running_stats = False  # use batch stats, leave buffers alone
    top1 = top5 = 0
    with torch.no_grad():
        for i in range(0, len(x), bs):
            out = m(x[i:i + bs])
            if isinstance(out, tuple):
                out = out[0]
            rank = (out > out.gather(1, y[i:i + bs, None])).sum(1)
            top1 += int((rank == 0).sum())
            top5 += int((rank < 5).sum())
    for _, b in bn_modules(m):
        b.track_running_stats = True
    m.eval()
    return top1 / len(x), top5 / len(x)


def recalibrate(m, xtr):
    for _, b in bn_modules(m):
        b.reset_running_stats()
        b.momentum = None   # cumulative average
    m.train()
    m.dropout.p = 0.0
    with torch.no_grad():
        for i in range(0, len(xtr), 128):
            m(xtr[i:i + 128])
    m.eval()


def stats_report(m, x):
    """Running statistics vs. the batch statistics of x, per BN layer."""
    batch = {}
    hooks = []
    for n, b in bn_modules(m):
        def hook(mod, inp, out, n=n):
            v = inp[0]
            batch[n] = (v.mean((0, 2, 3)), v.var((0, 2, 3)))
        hooks.append(b.register_forward_hook(hook))
        b.train()
        b.track_running_stats = False   # propagate with batch statistics, as in training
    with torch.no_grad():
        m(x[:200])
    for h in hooks:
        h.remove()
    for _, b in bn_modules(m):
        b.track_running_stats = True
    m.eval()
    rows = []
    for n, b in bn_modules(m):
        bm, bv = batch[n]
        rows.append((n, float(b.running_mean.abs().mean()), float(bm.abs().mean()),
                     float(b.running_var.mean()), float(bv.mean())))
    return rows


def main():
    path = sys.argv[1]
    nval = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 75
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x = prep(idx("t10k-images-idx3-ubyte.gz", nval), size)
    y = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz", nval).astype(np.int64))
    xtr = prep(idx("train-images-idx3-ubyte.gz", 512), size)
    classes = 10
    print(f"{os.path.basename(path)}: {nval} test images at {size}x{size}; chance 0.100")
    for ema in (False, True):
        m, _ = load(path, ema, classes)
        w = "ema" if ema else "raw"
        if not ema:
            rows = stats_report(m, x)
            print("  BN layer (stem, middle, last): |running_mean| vs |batch mean|, running_var vs batch var")
            for r in (rows[0], rows[len(rows) // 2], rows[-1]):
                print(f"    {r[0]:28s} {r[1]:9.4f} vs {r[2]:9.4f}   {r[3]:9.4f} vs {r[4]:9.4f}")
            ratio = np.median([r[3] / max(r[4], 1e-12) for r in rows])
            print(f"    median over {len(rows)} layers of running_var / batch var: {ratio:.3f}")
        for mode in ("running", "batch"):
            p1, r5 = evaluate(m, x, y, mode)
            print(f"  {w:3s} weights, {mode:7s} BN stats: precision @ 1 = {p1:.4f} recall @ 5 = {r5:.4f}")
        recalibrate(m, xtr)
        p1, r5 = evaluate(m, x, y, "running")
        print(f"  {w:3s} weights, recal   BN stats: precision @ 1 = {p1:.4f} recall @ 5 = {r5:.4f}")


if __name__ == "__main__":
    main()
