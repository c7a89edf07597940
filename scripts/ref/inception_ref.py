#!/usr/bin/python3
"""inception_ref.py -- torchvision Inception v3 references for deeper's parity tests.

Run with Debian's interpreter (/usr/bin/python3: torch 1.13, torchvision 0.14).
Everything is generated at test time from a fixed seed; nothing is committed.

    inception_ref.py gen --out DIR [--num_classes 11] [--seed 1]
                         [--eval_size 299] [--eval_batch 2]
                         [--train_size 299] [--train_batch 2]
                         [--gray_size 75] [--bn_momentum 0.0003]
        DIR/weights.safetensors   state_dict of
            torchvision.models.inception_v3(weights=None, aux_logits=True,
            init_weights=True, num_classes=K) after torch.manual_seed(seed),
            with BN weight/bias perturbed (gamma ~ U[0.5,1.5], beta ~ N(0,0.2))
            so the affine part is exercised, and running statistics
            calibrated by one cumulative train-mode pass over noise images
            (so eval-mode activations keep a sane scale).
            num_batches_tracked is KEPT, as I64 scalars, because that is what
            a state_dict converted to safetensors contains; deeper's loader
            ignores it and deeper's exporter writes it (strict loading in
            torchvision needs it).
        DIR/eval.safetensors      input U8 [N,H,W,3] (NHWC, as deeper's batches
            are), logits F32 [N,K] of model.eval() on x = (u8/255 - 0.5) * 2;
            gray_input U8 [N,g,g,1] and gray_logits: the gray image repeated
            into 3 channels at --gray_size.
        DIR/train_weights.safetensors  the same model with "ReLU margins":
            BN beta = gamma * (--relu_margin + U[0,1]) (default margin 3).
            Why: in a randomly initialised Inception many pre-activations sit
            within float32 rounding of 0 (and max-pool windows near ties), so
            float32 arithmetic flips some ReLU masks against the exact result
            and every flip moves a weight gradient by ~1e-3 of its size;
            measured, PyTorch's own float32 gradients differ from float64 by
            2.5% (median over tensors) on the ordinary weights.  With margins
            the same comparison gives ~6e-5, so a 1e-3 tolerance tests the
            maths rather than the rounding.
        DIR/train.safetensors     input U8 [N,H,W,3], labels I32 [N]; one
            train-mode forward and backward of
                total = CE(logits, y, ls=0.1) + 0.4 * CE(aux_logits, y, ls=0.1)
            with dropout disabled (p = 0; deeper's test runs with keep = 1)
            and every BN momentum = --bn_momentum (TF decay 0.9997).
            Tensors: loss, aux_loss, total (F32 scalars as shape [1]),
            logits, aux_logits, grad.<param> for every parameter of one
            conv layer per block plus both FC layers (no weight decay in these
            gradients: deeper adds it in the optimizer), and after.<buffer>
            for every BN running_mean / running_var after the step, and
            f32err.<param>: how far PyTorch's float32 gradient is from the
            float64 reference (max |diff| / max |ref|), the conditioning of
            each checked gradient.
            The aux head needs a 17x17 Mixed_6e map (input >= 299), as in
            torchvision; below that the generator runs without it and writes
            no aux tensors.
        The reference maths runs in float64 (the model is .double()), so the
        errors the tests print are deeper's float32 errors alone.

    inception_ref.py weights --out FILE [--num_classes K] [--seed S]
        Just a seeded torchvision inception_v3 state_dict (with
        num_batches_tracked), as a pretrained file would be, for the
        fine-tuning end-to-end test.

    inception_ref.py fake_ckpt --out DIR [--num_classes K] [--step 7]
        Writes DIR/model.ckpt-STEP.safetensors in deeper's checkpoint layout
        (trainer/checkpoint.h: plain torchvision names, "ema/<name>" shadows
        that differ from the raw values, "rmsprop_ms/" and "rmsprop_mom/"
        slots, __metadata__ format "deeper-checkpoint") from a seeded
        torchvision model, without num_batches_tracked, so `deeper export`
        can be tested without training.

    inception_ref.py check_export FILE [--num_classes K] [--expect LOGITS.safetensors]
                                  [--ckpt CKPT.safetensors]
        Loads FILE into torchvision.models.inception_v3(weights=None,
        aux_logits=True, init_weights=False, num_classes=K) with strict=True
        (fails loudly on any missing/unexpected key or shape), then, when
        --expect is given, runs model.eval() on its `input` (U8 NHWC) and
        compares with its `logits`; prints the largest relative error and
        exits 1 above --tol (default 1e-4).  With --ckpt, every exported
        tensor must equal the checkpoint's "ema/<name>" (or the plain tensor
        where there is no shadow) bit for bit, and every num_batches_tracked
        the checkpoint's step.
"""
import argparse
import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402
import numcheck  # noqa: E402

# One conv layer per block whose gradients the train reference records.
GRAD_LAYERS = [
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
    "Mixed_5b.branch5x5_2", "Mixed_5c.branch_pool", "Mixed_5d.branch3x3dbl_3",
    "Mixed_6a.branch3x3", "Mixed_6b.branch7x7_2", "Mixed_6c.branch7x7dbl_5",
    "Mixed_6d.branch7x7_3", "Mixed_6e.branch1x1",
    "AuxLogits.conv0", "AuxLogits.conv1",
    "Mixed_7a.branch7x7x3_4", "Mixed_7b.branch3x3_2a", "Mixed_7c.branch3x3dbl_3b",
]
GRAD_FC = ["fc", "AuxLogits.fc"]


def to_input(u8):
    """uint8 NHWC -> float64 NCHW in [-1, 1], gray repeated to 3 channels."""
    x = torch.from_numpy(u8.astype(np.float64)).permute(0, 3, 1, 2)
    x = (x / 255.0 - 0.5) * 2.0
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x.contiguous()


def noise_images(rng, n, size, c=3):
    """Smooth-ish random images: low-frequency pattern plus noise, uint8 NHWC."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    out = np.empty((n, size, size, c), np.uint8)
    for i in range(n):
        for ch in range(c):
            f = rng.uniform(1, 6, 2)
            ph = rng.uniform(0, 6.3, 2)
            base = 0.5 + 0.25 * np.sin(2 * np.pi * f[0] * xx + ph[0]) * np.cos(2 * np.pi * f[1] * yy + ph[1])
            img = base + rng.normal(0, 0.15, (size, size))
            out[i, :, :, ch] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out


def build(num_classes, seed, margin=None):
    """margin None: BN beta ~ N(0, 0.2); else beta = gamma * (margin + U[0, 1])."""
    torch.manual_seed(seed)
    m = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True,
                                        num_classes=num_classes)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                gamma = torch.rand(mod.weight.shape, generator=g) + 0.5
                mod.weight.copy_(gamma)
                if margin is None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.2)
                else:
                    mod.bias.copy_(gamma * (margin + torch.rand(mod.bias.shape, generator=g)))
    return m.double()


def calibrate(m, rng, size):
    """Cumulative BN statistics over one train-mode pass (aux head skipped,
    it cannot run below 299).  Leaves the model in eval mode."""
    aux = m.AuxLogits
    m.AuxLogits = None
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None
    m.train()
    with torch.no_grad():
        m(to_input(noise_images(rng, 4, size)))
    m.AuxLogits = aux
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = 0.1
            mod.num_batches_tracked.zero_()
    m.eval()


def state_to_numpy(m):
    out = {}
    for k, v in m.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = v.detach().cpu().numpy().astype(np.int64).reshape(())
        else:
            out[k] = v.detach().cpu().float().numpy()
    return out


def aux_runs(size):
    s = (size - 3) // 2 + 1          # Conv2d_1a_3x3
    s = s - 2                        # Conv2d_2a_3x3
    s = (s - 3) // 2 + 1             # maxpool1
    s = s - 2                        # Conv2d_4a_3x3
    s = (s - 3) // 2 + 1             # maxpool2
    s = (s - 3) // 2 + 1             # Mixed_6a
    return (s - 5) // 3 + 1 >= 5     # aux avg 5x5/3, then conv1 5x5 valid


def train_step(m, xt, labels, with_aux, bn_momentum):
    """One train-mode forward + backward in m's dtype; returns the tensors
    train.safetensors holds (gradients and statistics in that dtype)."""
    saved_aux = m.AuxLogits
    if not with_aux:
        m.AuxLogits = None
    m.dropout.p = 0.0
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = bn_momentum
    m.train()
    m.zero_grad()
    dt = next(m.parameters()).dtype
    y = torch.from_numpy(labels.astype(np.int64))
    out = m(to_input(xt).to(dt))
    if with_aux:
        logits, aux = out
    else:
        logits, aux = out if isinstance(out, tuple) else (out, None)
    loss = F.cross_entropy(logits, y, label_smoothing=0.1)
    total = loss
    t = {"logits": logits.detach().numpy(), "loss": np.array([loss.item()], np.float32)}
    if with_aux:
        aux_loss = F.cross_entropy(aux, y, label_smoothing=0.1)
        total = loss + 0.4 * aux_loss
        t["aux_loss"] = np.array([aux_loss.item()], np.float32)
        t["aux_logits"] = aux.detach().numpy()
    t["total"] = np.array([total.item()], np.float32)
    total.backward()
    m.AuxLogits = saved_aux
    params = dict(m.named_parameters())
    for layer in GRAD_LAYERS:
        if layer.startswith("AuxLogits") and not with_aux:
            continue
        for suffix in ("conv.weight", "bn.weight", "bn.bias"):
            k = layer + "." + suffix
            t["grad." + k] = params[k].grad.numpy()
    for layer in GRAD_FC:
        if layer.startswith("AuxLogits") and not with_aux:
            continue
        for suffix in ("weight", "bias"):
            k = layer + "." + suffix
            t["grad." + k] = params[k].grad.numpy()
    for k, v in m.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            t["after." + k] = v.detach().numpy()
    return t


def cmd_gen(a):
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    m = build(a.num_classes, a.seed)
    calibrate(m, rng, 147)
    st.save(os.path.join(a.out, "weights.safetensors"), state_to_numpy(m),
            {"format": "pt", "source": "scripts/ref/inception_ref.py", "seed": str(a.seed)})

    # eval mode, 3-channel and gray inputs
    m.eval()
    xe = noise_images(rng, a.eval_batch, a.eval_size)
    xg = noise_images(rng, a.eval_batch, a.gray_size, c=1)
    with torch.no_grad():
        le = m(to_input(xe)).float().numpy()
        lg = m(to_input(xg)).float().numpy()
    numcheck.assert_finite("reference eval logits", le)
    numcheck.assert_finite("reference gray eval logits", lg)
    st.save(os.path.join(a.out, "eval.safetensors"),
            {"input": xe, "logits": le, "gray_input": xg, "gray_logits": lg})

    # train mode, one forward + backward, on weights with ReLU margins (see
    # the module docstring), in float64 (the reference) and float32 (to
    # measure how well-conditioned each gradient is)
    m = build(a.num_classes, a.seed, margin=a.relu_margin)
    st.save(os.path.join(a.out, "train_weights.safetensors"), state_to_numpy(m),
            {"format": "pt", "source": "scripts/ref/inception_ref.py", "seed": str(a.seed),
             "relu_margin": repr(a.relu_margin)})
    xt = noise_images(rng, a.train_batch, a.train_size)
    labels = rng.integers(0, a.num_classes, a.train_batch).astype(np.int32)
    with_aux = aux_runs(a.train_size)
    f32 = train_step(copy.deepcopy(m).float(), xt, labels, with_aux, a.bn_momentum)
    t = train_step(m, xt, labels, with_aux, a.bn_momentum)
    t["input"] = xt
    t["labels"] = labels
    for k in list(t):
        if k.startswith("grad."):
            ref = t[k].astype(np.float64)
            numcheck.assert_finite("reference " + k, ref)   # a NaN reference is a failed reference
            numcheck.assert_finite("float32 " + k, f32[k])
            e = numcheck.max_rel_err(f32[k], ref, 1e-300)
            t["f32err." + k[5:]] = np.array([e], np.float32)
    for k in list(t):
        if k.startswith("grad.") or k.startswith("after.") or k in ("logits", "aux_logits"):
            t[k] = t[k].astype(np.float32)
    st.save(os.path.join(a.out, "train.safetensors"), t,
            {"with_aux": str(int(with_aux)), "bn_momentum": repr(a.bn_momentum)})
    print("inception_ref: wrote %s (K=%d, eval %dx%d b%d, train %dx%d b%d, aux %s)" %
          (a.out, a.num_classes, a.eval_size, a.eval_size, a.eval_batch,
           a.train_size, a.train_size, a.train_batch, "on" if with_aux else "off"))


def cmd_weights(a):
    m = build(a.num_classes, a.seed)
    st.save(a.out, state_to_numpy(m), {"format": "pt", "source": "scripts/ref/inception_ref.py"})
    print("weights: wrote %s (%d classes)" % (a.out, a.num_classes))
    return 0


def cmd_fake_ckpt(a):
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    m = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True,
                                        num_classes=a.num_classes)
    t = {}
    rng = np.random.default_rng(a.seed)
    trainable = {k for k, _ in m.named_parameters()}
    for k, v in m.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        w = v.detach().float().numpy()
        t[k] = w
        t["ema/" + k] = (w * 0.5 + rng.normal(0, 0.01, w.shape)).astype(np.float32)
        if k in trainable:
            t["rmsprop_ms/" + k] = np.ones_like(w)
            t["rmsprop_mom/" + k] = np.zeros_like(w)
    meta = {"format": "deeper-checkpoint", "version": "1", "step": str(a.step),
            "model": "inception_v3", "num_classes": str(a.num_classes), "image_size": "299",
            "channels": "3", "class_names": json.dumps(["c%d" % i for i in range(a.num_classes)])}
    path = os.path.join(a.out, "model.ckpt-%d.safetensors" % a.step)
    st.save(path, t, meta)
    print("fake_ckpt: wrote %s (%d tensors)" % (path, len(t)))
    return 0


def cmd_check_export(a):
    tensors, meta = st.load(a.file)
    if a.ckpt:
        ck, ckmeta = st.load(a.ckpt)
        step = int(ckmeta["step"])
        for k, v in tensors.items():
            if k.endswith("num_batches_tracked"):
                if v.dtype != np.int64 or v.shape != () or int(v) != step:
                    print("check_export: %s = %r (%s %s), expected I64 scalar %d" % (k, v, v.dtype, v.shape, step))
                    return 1
                continue
            src = ck.get("ema/" + k, ck.get(k))
            if src is None or src.shape != v.shape or src.tobytes() != v.tobytes():
                print("check_export: %s differs from the checkpoint's EMA value" % k)
                return 1
        print("check_export: %d tensors equal the checkpoint's EMA weights; num_batches_tracked = %d"
              % (len(tensors), step))
    sd = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    k = a.num_classes or int(meta["num_classes"])
    m = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                        num_classes=k)
    m.load_state_dict(sd, strict=True)
    print("check_export: %s loads into torchvision inception_v3(num_classes=%d) with strict=True "
          "(%d tensors)" % (a.file, k, len(sd)))
    if a.expect:
        e, _ = st.load(a.expect)
        m.eval()
        m.double()
        with torch.no_grad():
            got = m(to_input(e["input"])).numpy()
        ref = e["logits"].astype(np.float64)
        try:
            numcheck.assert_close("check_export: eval logits vs deeper", got, ref, a.tol, rel=True)
        except AssertionError as e:
            print(e)
            return 1
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--out", required=True)
    g.add_argument("--num_classes", type=int, default=11)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--eval_size", type=int, default=299)
    g.add_argument("--eval_batch", type=int, default=2)
    g.add_argument("--train_size", type=int, default=299)
    g.add_argument("--train_batch", type=int, default=2)
    g.add_argument("--gray_size", type=int, default=75)
    g.add_argument("--bn_momentum", type=float, default=0.0003)
    g.add_argument("--relu_margin", type=float, default=3.0)
    w = sub.add_parser("weights")
    w.add_argument("--out", required=True)
    w.add_argument("--num_classes", type=int, default=11)
    w.add_argument("--seed", type=int, default=5)
    f = sub.add_parser("fake_ckpt")
    f.add_argument("--out", required=True)
    f.add_argument("--num_classes", type=int, default=7)
    f.add_argument("--seed", type=int, default=3)
    f.add_argument("--step", type=int, default=7)
    c = sub.add_parser("check_export")
    c.add_argument("--ckpt")
    c.add_argument("file")
    c.add_argument("--num_classes", type=int, default=0, help="0: from the file's metadata")
    c.add_argument("--expect")
    c.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    torch.set_num_threads(int(os.environ.get("REF_THREADS", "2")))
    if a.cmd == "gen":
        cmd_gen(a)
        return 0
    if a.cmd == "weights":
        return cmd_weights(a)
    if a.cmd == "fake_ckpt":
        return cmd_fake_ckpt(a)
    return cmd_check_export(a)


if __name__ == "__main__":
    sys.exit(main())
