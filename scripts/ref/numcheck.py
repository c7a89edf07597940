#!/usr/bin/python3
"""numcheck.py -- float comparisons for the reference scripts and the tests.

Python's max() and numpy's comparisons are blind to NaN: max(0.0, nan) is
0.0, and a running "largest error" that starts at 0 stays 0 when every
difference is NaN.  Every float comparison in the Python side of the tests
goes through here, and here NaN or Inf on either side is a failure, never a
pass:

  max_abs_err(got, want)          largest |got - want|; inf when the shapes
                                  differ or either side holds NaN or Inf
  max_rel_err(got, want, floor)   max_abs_err / max(max |want|, floor), inf as above
  assert_close(name, got, want, tol, rel=False)
                                  print the largest error and the tolerance;
                                  raise AssertionError unless it is <= tol
  assert_identical(name, got, want)
                                  same dtype, shape and bytes, and finite
  assert_finite(name, x)          every element finite
  compare_checkpoints(path_a, path_b, meta=("step", "position", "seed"))
                                  two safetensors checkpoints: the same tensor
                                  names, every tensor bit-identical and finite,
                                  the same metadata values for meta
"""
import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def max_abs_err(got, want):
    g, w = _f64(got), _f64(want)
    if g.shape != w.shape:
        return float("inf")
    if g.size == 0:
        return 0.0
    if not (np.isfinite(g).all() and np.isfinite(w).all()):
        return float("inf")
    return float(np.abs(g - w).max())


def max_rel_err(got, want, floor=1e-30):
    e = max_abs_err(got, want)
    if e == float("inf") or _f64(want).size == 0:
        return e
    return e / max(float(np.abs(_f64(want)).max()), floor)


def _nonfinite(x):
    a = np.asarray(x)
    if a.dtype.kind not in "fc":
        return 0
    return int(a.size - np.isfinite(a).sum())


def assert_close(name, got, want, tol, rel=False):
    e = max_rel_err(got, want) if rel else max_abs_err(got, want)
    bad = _nonfinite(got) + _nonfinite(want)
    note = " (%d NaN/Inf values)" % bad if bad else ""
    print("%s: largest %s error %.3g (tol %g)%s" % (name, "relative" if rel else "absolute", e, tol, note))
    if not e <= tol:
        raise AssertionError("%s: largest error %g exceeds %g%s" % (name, e, tol, note))
    return e


def assert_finite(name, x):
    bad = _nonfinite(x)
    if bad:
        raise AssertionError("%s: %d of %d values are NaN or Inf" % (name, bad, np.asarray(x).size))


def assert_identical(name, got, want):
    g, w = np.asarray(got), np.asarray(want)
    if g.dtype != w.dtype or g.shape != w.shape:
        raise AssertionError("%s: %s %s vs %s %s" % (name, g.dtype, g.shape, w.dtype, w.shape))
    assert_finite(name + " (first)", g)
    assert_finite(name + " (second)", w)
    if g.tobytes() != w.tobytes():
        raise AssertionError("%s: not bit-identical, largest difference %g" % (name, max_abs_err(g, w)))


def compare_checkpoints(path_a, path_b, meta=("step", "position", "seed")):
    from safetensors_np import load
    a, ma = load(path_a)
    b, mb = load(path_b)
    if sorted(a) != sorted(b):
        raise AssertionError("tensor names differ: only in %s: %s; only in %s: %s" % (
            path_a, sorted(set(a) - set(b)), path_b, sorted(set(b) - set(a))))
    worst = max((max_abs_err(a[k], b[k]) for k in a), default=0.0)
    print("%s vs %s: %d tensors, largest difference %g" % (path_a, path_b, len(a), worst))
    for k in sorted(a):
        assert_identical(k, a[k], b[k])
    for k in meta:
        if ma.get(k) != mb.get(k):
            raise AssertionError("metadata %s: %r vs %r" % (k, ma.get(k), mb.get(k)))


def _selftest():
    nan, inf = float("nan"), float("inf")
    assert max(0.0, nan) == 0.0                      # the trap this module exists for
    assert max_abs_err([1.0, 2.0], [1.0, 2.5]) == 0.5
    assert max_abs_err([], []) == 0.0
    for got, want in (([nan], [1.0]), ([1.0], [nan]), ([nan], [nan]), ([inf], [inf]), ([1.0, -inf], [1.0, 0.0]),
                      ([1.0, 2.0], [1.0])):
        assert max_abs_err(got, want) == inf, (got, want)
        assert max_rel_err(got, want) == inf, (got, want)
        try:
            assert_close("selftest", got, want, 1e30)
        except AssertionError:
            pass
        else:
            raise SystemExit("assert_close passed %r vs %r" % (got, want))
    assert_close("selftest", [1.0, 2.0], [1.0, 2.0 + 1e-7], 1e-6)
    assert abs(max_rel_err([2.0], [4.0]) - 0.5) < 1e-12
    a = np.array([1.0, nan], np.float32)
    for bad in ((a, a.copy()), (np.zeros(2, np.float32), np.zeros(2, np.float64))):
        try:
            assert_identical("selftest", *bad)
        except AssertionError:
            pass
        else:
            raise SystemExit("assert_identical passed %r" % (bad,))
    assert_identical("selftest", np.arange(3, dtype=np.float32), np.arange(3, dtype=np.float32))
    print("numcheck: selftest ok")


if __name__ == "__main__":
    _selftest()
