#!/usr/bin/python3
"""inception_cpu_torch.py -- the PyTorch peer that scripts/bench/inception_cpu/run runs.

Trains torchvision's inception_v3 (aux head on, random init, 1001 classes,
TF's loss: label smoothing 0.1 + 0.4 x aux) with RMSprop on random uint8
batches normalised to [-1, 1], on CPU with a fixed thread count, and prints
one line:  "torch images/s = X (batch B, size S, threads T, steps N)".
Run with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14).
"""
import argparse
import time

import torch
import torch.nn.functional as F
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--batch_size", type=int, default=4)
p.add_argument("--image_size", type=int, default=299)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--warmup", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
aux = a.image_size >= 299
m = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True, num_classes=1001)
if not aux:
    m.AuxLogits = None
m.dropout.p = 0.2
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.momentum = 0.0003
m.train()
opt = torch.optim.RMSprop(m.parameters(), lr=0.01, alpha=0.9, eps=1.0, momentum=0.9, weight_decay=4e-5)
x8 = torch.randint(0, 256, (a.batch_size, 3, a.image_size, a.image_size), dtype=torch.uint8)
y = torch.randint(0, 1001, (a.batch_size,))


def step():
    x = (x8.float() / 255.0 - 0.5) * 2.0
    opt.zero_grad()
    out = m(x)
    if aux:
        logits, al = out
        loss = F.cross_entropy(logits, y, label_smoothing=0.1) + 0.4 * F.cross_entropy(al, y, label_smoothing=0.1)
    else:
        logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits, y, label_smoothing=0.1)
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(a.warmup):
    step()
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
dt = time.perf_counter() - t0
print("torch images/s = %.3f (batch %d, size %d, threads %d, steps %d, %.2f s/step)" %
      (a.batch_size * a.steps / dt, a.batch_size, a.image_size, a.threads, a.steps, dt / a.steps))
