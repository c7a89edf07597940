#!/usr/bin/env bash
# ingest_bad_inputs.sh — every class of bad or unusual input, end to end:
# truncated/corrupt JPEG, zero-byte, non-image, PNG and WebP named .jpg,
# CMYK JPEG, grayscale, 16-bit / palette / alpha PNG, animated WebP, a header
# over --max_pixels, an unreadable file, symlink loops (file and folder),
# a broken link, a FIFO, odd file names.  Accepted ones must hold the right
# pixels; each rejected one must get one log line naming it and the reason,
# a line in rejected.txt, and be counted in the summary.
# Then the fatal paths: unwritable output, a file-size limit (a stand-in for
# a full disk) — clear message, non-zero exit, no manifest.
set -euo pipefail
D="$DEEPER_BIN"
CHECK="$(cd "$(dirname "$0")" && pwd)/ingest_check.py"
cd "$TMPDIR"
chmod 755 "$TMPDIR"

/usr/bin/python3 - <<'EOF'
import hashlib, io, json, os
import numpy as np
from PIL import Image
os.makedirs("tree/good", exist_ok=True)
os.makedirs("tree/bad", exist_ok=True)
exp = {}
def rgb(h, w, s):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 9 + s) % 256, (yy * 7) % 256, (xx * yy + s) % 256], -1).astype(np.uint8)
def keep(name, arr):
    exp[name] = [0, arr.shape[0], arr.shape[1], 3, hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()]
a = rgb(20, 30, 1)
# accepted ------------------------------------------------------------
Image.fromarray(a).save("tree/good/png_named.jpg", format="PNG"); keep("good/png_named.jpg", a)
Image.fromarray(a).save("tree/good/webp_named.jpg", format="WEBP", lossless=True); keep("good/webp_named.jpg", a)
Image.fromarray(a).save("tree/good/plain.jpg", quality=90)
keep("good/plain.jpg", np.asarray(Image.open("tree/good/plain.jpg").convert("RGB")))
g = a[..., 1].copy()
Image.fromarray(g).save("tree/good/gray.jpg", quality=90)
keep("good/gray.jpg", np.asarray(Image.open("tree/good/gray.jpg").convert("RGB")))
cm = Image.fromarray(a).convert("CMYK"); cm.save("tree/good/cmyk.jpg", quality=95)
assert Image.open("tree/good/cmyk.jpg").mode == "CMYK"
open("cmyk_ref.bin", "wb").write(np.asarray(Image.open("tree/good/cmyk.jpg").convert("RGB")).tobytes())
g16 = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 97)
Image.fromarray(g16).save("tree/good/gray16.png")
hi = (g16 >> 8).astype(np.uint8); keep("good/gray16.png", np.stack([hi] * 3, -1))
p = Image.fromarray(a).quantize(16); p.save("tree/good/palette.png")
keep("good/palette.png", np.asarray(p.convert("RGB")))
rgba = np.concatenate([a, np.full((20, 30, 1), 40, np.uint8)], -1)
Image.fromarray(rgba, "RGBA").save("tree/good/alpha.png"); keep("good/alpha.png", a)
for nm in ["-leading dash.png", "new\nline.png", "back\\slash.png", "日本語.png", "a" * 200 + ".png"]:
    Image.fromarray(a).save("tree/good/" + nm, format="PNG"); keep("good/" + nm, a)
json.dump(exp, open("expected.json", "w"))
# rejected ------------------------------------------------------------
buf = io.BytesIO(); Image.fromarray(rgb(64, 64, 3)).save(buf, "JPEG", quality=90); j = buf.getvalue()
open("tree/bad/truncated.jpg", "wb").write(j[: len(j) // 2])
c = bytearray(j); c[len(j) // 2: len(j) // 2 + 2] = b"\xff\xd9"; open("tree/bad/corrupt.jpg", "wb").write(bytes(c))
open("tree/bad/empty.jpg", "wb").close()
open("tree/bad/notes.txt", "w").write("not an image\n")
frames = [Image.fromarray(rgb(16, 16, s)) for s in (1, 50)]
frames[0].save("tree/bad/anim.webp", save_all=True, append_images=frames[1:], duration=100, lossless=True)
Image.fromarray(rgb(8, 8, 1)).save("tree/bad/gif.jpg", format="GIF")
# a PNG whose header claims 100000 x 100000 (no pixel data)
import struct, zlib
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
open("tree/bad/huge.png", "wb").write(png + b"\0" * 64)
EOF
ln -s loop_b tree/bad/loop_a.jpg
ln -s loop_a.jpg tree/bad/loop_b
ln -s no_such_file tree/bad/dangling.jpg
ln -s .. tree/bad/up
mkfifo tree/bad/fifo.jpg
cp tree/good/plain.jpg tree/bad/unreadable.jpg
chmod 000 tree/bad/unreadable.jpg
touch tree/good/.hidden_ignored

run_ingest() {   # root reads any file: drop to nobody so the unreadable file really is
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    # nobody may not reach the checkout (e.g. a clone in a mode-700 mktemp folder): run copies
    mkdir -p nobody-bin; cp "$D/deeper" "$D/deeper-ingest" nobody-bin/; chmod 755 nobody-bin
    setpriv --reuid=65534 --regid=65534 --clear-groups nobody-bin/deeper ingest "$@"
  else
    "$D/deeper" ingest "$@"
  fi
}
chmod -R a+rwX tree 2>/dev/null || true
chmod 000 tree/bad/unreadable.jpg
mkdir -m 777 out
run_ingest --train_directory tree --output_directory out/ds --train_shards 2 --num_threads 2 --max_pixels 1000000 \
  > stdout.txt 2> stderr.txt || { cat stderr.txt; exit 1; }
cat stdout.txt

# rejected: one line each on stderr and in rejected.txt, with the reason
expect_rejected() {   # name, reason fragment
  grep -F "rejected train/bad/$1: " stderr.txt | grep -qiF "$2" || { echo "no log line for $1 ($2)"; cat stderr.txt; exit 1; }
  grep -F "bad/$1	" out/ds/rejected.txt | grep -qiF "$2" || { echo "no rejected.txt line for $1"; cat out/ds/rejected.txt; exit 1; }
}
expect_rejected truncated.jpg "jpeg"
expect_rejected corrupt.jpg "jpeg"
expect_rejected empty.jpg "empty file"
expect_rejected notes.txt "not an image"
expect_rejected anim.webp "animated WebP"
expect_rejected gif.jpg "gif"
expect_rejected huge.png "max_pixels"
expect_rejected loop_a.jpg "loop"
expect_rejected loop_b "loop"
expect_rejected dangling.jpg "broken symbolic link"
expect_rejected up "loop"
expect_rejected fifo.jpg "not a regular file"
if [ "$(id -u)" != 0 ] || command -v setpriv >/dev/null; then expect_rejected unreadable.jpg "permission denied"; fi
nrej=$(wc -l < out/ds/rejected.txt)
[ "$nrej" -eq 13 ] || { echo "rejected.txt has $nrej lines, expected 13"; cat out/ds/rejected.txt; exit 1; }
grep -q "^rejected: 13 " stdout.txt
grep -q "^train: 13 images" stdout.txt
grep -q "skipped 1 hidden" stderr.txt

# accepted: exact pixels (CMYK checked against PIL's conversion, within 1)
/usr/bin/python3 - "$CHECK" <<'EOF'
import json, os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import ingest_check
m, recs = ingest_check.read_dataset("out/ds")
got = {n: r for (_, n), r in recs.items()}
exp = json.load(open("expected.json"))
import hashlib
for name, (label, h, w, c, sha) in exp.items():
    r = got.pop(name)
    assert (r["h"], r["w"], r["c"]) == (h, w, c), name
    assert hashlib.sha256(r["payload"]).hexdigest() == sha, "pixels differ: " + repr(name)
cm = got.pop("good/cmyk.jpg")
ref = np.frombuffer(open("cmyk_ref.bin", "rb").read(), np.uint8)
d = np.abs(np.frombuffer(cm["payload"], np.uint8).astype(int) - ref).max()
print("cmyk vs PIL: largest error", d)
assert d <= 1
assert not got, got.keys()
print("ok accepted", len(recs))
EOF
"$D/deeper" info --verify out/ds | grep -q "verify: OK, 13 records"

# fatal: output not writable / not a directory
if "$D/deeper" ingest --train_directory tree --output_directory /proc/version/x 2> err1.txt; then
  echo "accepted an impossible output directory"; exit 1; fi
grep -q "output_directory" err1.txt
[ "$(wc -l < err1.txt)" -le 3 ]
mkdir -m 555 ro
if run_ingest --train_directory tree --output_directory ro/ds 2> err2.txt; then echo "wrote into a read-only dir"; exit 1; fi
grep -qi "permission denied\|not writable" err2.txt
# fatal: a file-size limit makes the shard writes fail (as a full disk would)
mkdir big
/usr/bin/python3 -c "
import numpy as np; from PIL import Image; import os
for i in range(40): Image.fromarray(np.random.default_rng(i).integers(0,255,(200,200,3),dtype=np.uint8)).save('big/x/%d.png'%i) if os.path.isdir('big/x') else (os.makedirs('big/x'), Image.fromarray(np.random.default_rng(i).integers(0,255,(200,200,3),dtype=np.uint8)).save('big/x/%d.png'%i))
"
set +e
( trap '' XFSZ; ulimit -f 2048; exec "$D/deeper" ingest --train_directory big --output_directory full --num_threads 2 ) 2> err3.txt
rc=$?
set -e
[ $rc -ne 0 ] || { echo "a failing write did not fail the run"; exit 1; }
grep -q "deeper ingest: error: .*full/train-0000[01]-of-00002.mdb" err3.txt || { cat err3.txt; exit 1; }
[ ! -e full/manifest.json ]
echo ok
