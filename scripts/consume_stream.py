#!/usr/bin/python3
"""consume_stream.py — a Python/PyTorch training loop fed by deeper's augment workers.

Binds a PULL socket, receives batch messages (proto/batch.md), checks them,
and hands uint8 NHWC batches to a training step as float tensors in [-1, 1]
(TF Inception's scaling).  Start workers that connect to it, e.g.

    scripts/consume_stream.py --bind tcp://127.0.0.1:5555 --batches 100 &
    for i in 0 1; do deeper augment --data_dir DS --worker $i --num_workers 2 \
        --connect tcp://127.0.0.1:5555 --batch_size 32 --image_size 299 & done

Options used by the tests: --eval (stop after one complete pass and print
the example ids), --dump FILE (write every batch's header fields and a hash
of its pixels, one line per batch), --sleep S (a slow consumer).
Uses /usr/bin/python3 (Debian's numpy, pyzmq, torch).
"""
import argparse, hashlib, struct, sys, time

import numpy as np
import zmq

HDR = struct.Struct("<IHHIHHQQIIIIIIQ")  # 64 bytes, see proto/batch.md
MAGIC, END_OF_PASS = 0x48425044, 1


def batches(sock, expect_hw=None):
    """Yield (header dict, labels, ids, pixels) for every well-formed message."""
    while True:
        frames = sock.recv_multipart(copy=False)
        if len(frames) != 4 or len(frames[0]) != HDR.size:
            print("dropped malformed message", file=sys.stderr); continue
        (magic, ver, hsz, flags, worker, nworkers, seq, epoch, n, h, w, c, dtype, count, seed) = HDR.unpack(frames[0].bytes)
        if magic != MAGIC or ver != 1 or dtype != 1 or [len(f) for f in frames[1:]] != [4 * n, 8 * n, n * h * w * c]:
            print("dropped malformed message", file=sys.stderr); continue
        hdr = dict(flags=flags, worker=worker, num_workers=nworkers, seq=seq, epoch=epoch, n=n, h=h, w=w, c=c,
                   count=count, seed=seed, end=bool(flags & END_OF_PASS))
        labels = np.frombuffer(frames[1].buffer, np.int32)
        ids = np.frombuffer(frames[2].buffer, np.uint64)
        pixels = np.frombuffer(frames[3].buffer, np.uint8).reshape(n, h, w, c)
        yield hdr, labels, ids, pixels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bind", default="tcp://127.0.0.1:5555")
    ap.add_argument("--batches", type=int, default=100, help="stop after this many batches (0: forever)")
    ap.add_argument("--per_worker", type=int, default=0, help="stop once every worker has sent this many batches")
    ap.add_argument("--eval", action="store_true", help="stop after one complete pass; print the ids seen")
    ap.add_argument("--workers", type=int, default=0, help="eval: END markers to wait for (0: from headers)")
    ap.add_argument("--dump", help="write one line per batch: worker seq epoch n labels-hash pixels-hash count")
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds per batch (simulate a slow step)")
    ap.add_argument("--train", action="store_true", help="run a tiny torch model on the batches")
    ap.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds without data")
    a = ap.parse_args()

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, 2)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(a.timeout * 1000))
    sock.bind(a.bind)
    out = open(a.dump, "w") if a.dump else None
    model = opt = None
    if a.train:
        import torch
        torch.set_num_threads(1)
    seen, ends, got, t0 = [], set(), 0, time.time()
    per_worker = {}
    try:
        for hdr, labels, ids, pixels in batches(sock):
            if out:
                out.write("%d %d %d %d %s %s %d\n" % (hdr["worker"], hdr["seq"], hdr["epoch"], hdr["n"],
                          hashlib.sha1(labels.tobytes() + ids.tobytes()).hexdigest()[:16],
                          hashlib.sha1(pixels.tobytes()).hexdigest()[:16], hdr["count"]))
                out.flush()
            if hdr["end"]:
                ends.add(hdr["worker"])
                if a.eval and len(ends) == (a.workers or hdr["num_workers"]):
                    break
                continue
            seen.extend(int(i) for i in ids)
            if a.train:                                   # the training step a user would write
                import torch
                x = torch.from_numpy(pixels.copy()).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
                y = torch.from_numpy(labels.astype(np.int64))
                if model is None:
                    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(),
                                                torch.nn.Linear(16 * hdr["c"], int(y.max()) + 10))
                    opt = torch.optim.SGD(model.parameters(), lr=0.1)
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad(); loss.backward(); opt.step()
            if a.sleep:
                time.sleep(a.sleep)
            got += 1
            per_worker[hdr["worker"]] = per_worker.get(hdr["worker"], 0) + 1
            if a.per_worker:
                if len(per_worker) == hdr["num_workers"] and min(per_worker.values()) >= a.per_worker:
                    break
            elif a.batches and got >= a.batches and not a.eval:
                break
    except zmq.Again:
        print("consume_stream: no data for %.0f s" % a.timeout, file=sys.stderr)
        sys.exit(1)
    dt = time.time() - t0
    if a.eval:
        print("ids", " ".join(str(i) for i in sorted(seen)))
    print("consume_stream: %d batches, %d examples in %.1f s" % (got, len(seen), dt), file=sys.stderr)
    sock.close()
    ctx.term()


if __name__ == "__main__":
    main()
