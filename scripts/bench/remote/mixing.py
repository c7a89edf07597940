#!/usr/bin/python3
"""How well an epoch's order mixes the stored order: the shuffle-buffer order of
`deeper augment --connect` workers against the full per-epoch permutation of the
dispatcher stream (proto/dispatch.md, MIXING).

Simulates one epoch of N records stored in S shards, either label-sorted (the worst
case: a folder of class directories ingested without shuffling) or in random order,
and prints for each order:
  displacement   mean |position - stored index| / N  (a uniform shuffle gives 1/3)
  batch classes  mean number of distinct labels in a batch of 32
  max share      mean largest share of one label in a batch of 32
  run            mean length of runs of equal labels
Usage: mixing.py [N] [CLASSES] [SHARDS] [BUFFER] [WORKERS]
"""
import sys
import numpy as np

N = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
C = int(sys.argv[2]) if len(sys.argv) > 2 else 10
S = int(sys.argv[3]) if len(sys.argv) > 3 else 2
BUF = int(sys.argv[4]) if len(sys.argv) > 4 else 16 * 1024
W = int(sys.argv[5]) if len(sys.argv) > 5 else 2
B = 32
rng = np.random.default_rng(1)


def buffer_order(W):
    """Shards in a random order; worker i a contiguous slice; a shuffle buffer of BUF;
    the consumer takes batch k from worker k % W."""
    bounds = np.linspace(0, N, S + 1).astype(int)
    shards = [np.arange(bounds[s], bounds[s + 1]) for s in rng.permutation(S)]
    seq = np.concatenate(shards)
    per = []
    for i in range(W):
        src = list(seq[N * i // W: N * (i + 1) // W])
        cap = min(BUF, len(src))
        buf, src = src[:cap], src[cap:]
        out = []
        while buf:
            j = rng.integers(len(buf))
            out.append(buf[j])
            if src:
                buf[j] = src.pop(0)
            else:
                buf[j] = buf[-1]
                buf.pop()
        per.append(out)
    order = []
    k = 0
    while any(per):
        w = per[k % W]
        order += w[:B]
        del w[:B]
        k += 1
    return np.array(order)


def stats(order, labels):
    disp = np.abs(np.arange(len(order)) - order).mean() / N
    lab = labels[order]
    nb = len(lab) // B
    batches = lab[: nb * B].reshape(nb, B)
    distinct = np.mean([len(np.unique(b)) for b in batches])
    share = np.mean([np.bincount(b, minlength=C).max() / B for b in batches])
    runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, lab, -1]) != 0)).mean()
    return disp, distinct, share, runs


for stored in ("label-sorted", "random"):
    labels = np.sort(rng.integers(0, C, N)) if stored == "label-sorted" else rng.integers(0, C, N)
    print("%s storage, N %d, %d classes, %d shards, buffer %d, %d workers:" % (stored, N, C, S, BUF, W))
    for name, order in (("shuffle buffer (--connect)", buffer_order(W)),
                        ("full permutation (dispatcher)", rng.permutation(N))):
        d, k, s, r = stats(order, labels)
        print("  %-30s displacement %.3f  batch classes %.2f  max share %.3f  run %.2f" % (name, d, k, s, r))
print("(uniform: displacement 0.333, batch classes %.2f, run %.2f)" % (C * (1 - (1 - 1 / C) ** B), 1 / (1 - 1 / C)))
