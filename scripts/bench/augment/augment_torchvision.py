#!/usr/bin/python3
"""augment_torchvision.py — the torchvision peer for scripts/bench/augment/run.

Times the torchvision equivalent of Inception's training distortions on one
core (torch.set_num_threads(1)):
    RandomResizedCrop(S, scale=(0.05, 1), ratio=(0.75, 1.33)),
    RandomHorizontalFlip(), ColorJitter(32/255, 0.5, 0.5, 0.2), ToTensor(),
    Normalize([0.5]*3, [0.5]*3)
on the same JPEG files deeper reads, (a) on images decoded beforehand (PIL
images in memory) and (b) including the decode (PIL open + convert("RGB")
from the file bytes).  Prints "decoded IMG_PER_S" and "with_decode IMG_PER_S".
Usage: augment_torchvision.py IMAGE_DIR SIZE SECONDS
"""
import glob, io, os, sys, time

import torch
import torchvision.transforms as T
from PIL import Image

torch.set_num_threads(1)
root, size, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
files = sorted(glob.glob(os.path.join(root, "*", "*.jpg")))
blobs = [open(f, "rb").read() for f in files]
decoded = [Image.open(io.BytesIO(b)).convert("RGB") for b in blobs]
tf = T.Compose([T.RandomResizedCrop(size, scale=(0.05, 1.0), ratio=(0.75, 1.33)), T.RandomHorizontalFlip(),
                T.ColorJitter(32 / 255, 0.5, 0.5, 0.2), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
torch.manual_seed(0)


def rate(fn):
    for i in range(5):
        fn(i)
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < secs:
        fn(n)
        n += 1
    return n / (time.process_time() - t0)


print("decoded %.1f" % rate(lambda i: tf(decoded[i % len(decoded)])))
print("with_decode %.1f" % rate(lambda i: tf(Image.open(io.BytesIO(blobs[i % len(blobs)])).convert("RGB"))))
