#!/usr/bin/env python3
"""Write the 8x8 handwritten digits that scikit-learn ships (1797 images) as
PNG class folders: OUT/train/<digit>/NNNN.png and OUT/validation/<digit>/...,
a fixed 80/20 split (numpy RandomState(0) permutation).  Pixels 0..16 are
scaled to 0..255; the images stay 8x8 (the augment workers resize them to
--image_size).  Exit 77 when scikit-learn or Pillow is missing."""
import os
import sys

try:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
except ModuleNotFoundError as e:  # not installed: the test skips; any other import error fails it
    if e.name not in ("numpy", "PIL", "sklearn"):
        raise
    print("skip: the Python module %s is not installed (python3-sklearn, python3-numpy, python3-pil)" % e.name)
    sys.exit(77)

out = sys.argv[1]
d = load_digits()
x = np.clip(np.round(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
y = d.target
idx = np.random.RandomState(0).permutation(len(y))
cut = int(len(y) * 0.8)
for subset, ids in (("train", idx[:cut]), ("validation", idx[cut:])):
    for i in ids:
        folder = os.path.join(out, subset, str(int(y[i])))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(x[i], "L").save(os.path.join(folder, "%04d.png" % i))
print("digits: %d train, %d validation" % (cut, len(y) - cut))
