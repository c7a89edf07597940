#!/usr/bin/env bash
# deeper keygen: a CURVE key pair in czmq's zcert format, the secret file
# 0600 even under a permissive umask, never overwritten; listed by the front door.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/check_lib.bash"
cd "$TMPDIR"
D="$DEEPER_BIN/deeper"
grep -q "keygen" <<<"$("$D" --help)"
umask 000
"$D" keygen --name w1 keys > out.txt
grep -q "^public key " out.txt
test "$(stat -c %a keys)" = 700
test "$(stat -c %a keys/w1.key_secret)" = 600
test "$(stat -c %a keys/w1.key)" = 644
grep -Eq '^    public-key = ".{40}"$' keys/w1.key
grep -Eq '^    secret-key = ".{40}"$' keys/w1.key_secret
check_not "the public key file holds the secret key" grep -q secret-key keys/w1.key
pub=$(sed -n 's/^    public-key = "\(.*\)"$/\1/p' keys/w1.key)
grep -qF "public key $pub" out.txt
before=$(md5sum keys/w1.key_secret)
rc=0; "$D" keygen --name w1 keys 2> err.txt || rc=$?
test $rc -ne 0
grep -q "not overwriting" err.txt
test "$(md5sum keys/w1.key_secret)" = "$before"
echo ok
