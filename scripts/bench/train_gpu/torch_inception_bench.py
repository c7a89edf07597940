#!/usr/bin/env python3
"""torch_inception_bench.py - the PyTorch peer for scripts/bench/train_gpu/run.

Trains torchvision's inception_v3 (aux head on, as deeper's model) on
synthetic input and prints one line per mode:

    torch inception_v3 fp32 batch 128 size 299: 1234.5 images/s (median of 5 x 10 steps)

Modes: fp32 (eager, TF32 allowed in cuDNN and matmul, as deeper's default),
bf16 (torch.autocast bf16 + channels_last).  The training step matches
deeper's: label-smoothed (0.1) cross entropy + 0.4 x aux loss, RMSprop
(alpha 0.9, momentum 0.9, eps 1.0), weight decay 4e-5.  Runs on whatever
python3 has torch with CUDA (on the GPU machines: the image's own).
"""
import argparse
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--image_size", type=int, default=299)
    ap.add_argument("--modes", default="fp32,bf16")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--classes", type=int, default=1000)
    a = ap.parse_args()
    import torch
    import torchvision
    if not torch.cuda.is_available():
        print("torch: no CUDA device; skipped")
        return 0
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device("cuda")
    print(f"torch {torch.__version__} torchvision {torchvision.__version__} on "
          f"{torch.cuda.get_device_name(0)}", flush=True)
    for mode in a.modes.split(","):
        torch.manual_seed(1)
        model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                                num_classes=a.classes).to(dev)
        cl = mode == "bf16"
        if cl:
            model = model.to(memory_format=torch.channels_last)
        model.train()
        opt = torch.optim.RMSprop(model.parameters(), lr=0.045, alpha=0.9, eps=1.0, momentum=0.9,
                                  weight_decay=4e-5)
        crit = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        x = torch.rand(a.batch_size, 3, a.image_size, a.image_size, device=dev) * 2 - 1
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, a.classes, (a.batch_size,), device=dev)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(mode == "bf16")):
                out, aux = model(x)
                loss = crit(out.float(), y) + 0.4 * crit(aux.float(), y)
            loss.backward()
            opt.step()
            return loss

        for _ in range(a.warmup):
            step()
        torch.cuda.synchronize()
        rates = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for _ in range(a.steps):
                loss = step()
            torch.cuda.synchronize()
            rates.append(a.steps * a.batch_size / (time.perf_counter() - t0))
        print(f"torch inception_v3 {mode} batch {a.batch_size} size {a.image_size}: "
              f"{statistics.median(rates):.1f} images/s (median of {a.repeats} x {a.steps} steps; "
              f"loss {loss.item():.3f})", flush=True)
        del model, opt
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
