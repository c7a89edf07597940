#!/usr/bin/python3
"""tb_read.py - an independent reader for TensorBoard event files.

Used by the tests to check what deeper's shared/tfevents.c writes, without
TensorFlow or TensorBoard.  It parses the TFRecord framing
(uint64 length, masked CRC32C of the length, data, masked CRC32C of the data),
checks both CRCs, and decodes the tensorflow.Event protobuf by hand (varints,
fixed32/64, length-delimited fields), following event.proto / summary.proto:

  Event:   1 wall_time double, 2 step int64, 3 file_version string,
           5 summary Summary, 7 session_log SessionLog
  Summary: 1 value Value (repeated)
  Value:   1 tag string, 2 simple_value float
  SessionLog: 1 status enum (START = 1)

Usage:
  tb_read.py FILE_OR_DIR...        one JSON object per event on stdout
  tb_read.py --scalars TAG PATH    "step value" lines for one tag
Exit status 1 with a message on stderr for any framing, CRC or protobuf error.
"""
import json
import os
import struct
import sys


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli) of data; pass a previous result as crc to continue it.
    Also imported by tests/e2e/ingest_check.py."""
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(c):
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283
assert crc32c(b"56789", crc32c(b"1234")) == 0xE3069283


class FormatError(Exception):
    pass


def varint(buf, i):
    shift = 0
    v = 0
    while True:
        if i >= len(buf):
            raise FormatError("truncated varint")
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise FormatError("varint too long")


def fields(buf):
    """Yield (field number, wire type, value) for one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            if i + 8 > len(buf):
                raise FormatError("truncated fixed64")
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            n, i = varint(buf, i)
            if i + n > len(buf):
                raise FormatError("truncated length-delimited field %d" % num)
            v = buf[i:i + n]
            i += n
        elif wt == 5:
            if i + 4 > len(buf):
                raise FormatError("truncated fixed32")
            v = buf[i:i + 4]
            i += 4
        else:
            raise FormatError("unsupported wire type %d" % wt)
        yield num, wt, v


def decode_event(buf):
    ev = {}
    for num, wt, v in fields(buf):
        if num == 1 and wt == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif num == 2 and wt == 0:
            ev["step"] = v - (1 << 64) if v >= (1 << 63) else v
        elif num == 3 and wt == 2:
            ev["file_version"] = v.decode("utf-8")
        elif num == 5 and wt == 2:
            values = []
            for n2, w2, val in fields(v):
                if n2 != 1 or w2 != 2:
                    continue
                item = {}
                for n3, w3, x in fields(val):
                    if n3 == 1 and w3 == 2:
                        item["tag"] = x.decode("utf-8")
                    elif n3 == 2 and w3 == 5:
                        item["simple_value"] = struct.unpack("<f", x)[0]
                values.append(item)
            ev["summary"] = values
        elif num == 7 and wt == 2:
            sl = {}
            for n2, w2, x in fields(v):
                if n2 == 1 and w2 == 0:
                    sl["status"] = x
                elif n2 == 2 and w2 == 2:
                    sl["checkpoint_path"] = x.decode("utf-8")
            ev["session_log"] = sl
    return ev


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    n = 0
    while i < len(data):
        if i + 12 > len(data):
            raise FormatError("%s: truncated record header at byte %d" % (path, i))
        length = struct.unpack("<Q", data[i:i + 8])[0]
        hcrc = struct.unpack("<I", data[i + 8:i + 12])[0]
        if masked(crc32c(data[i:i + 8])) != hcrc:
            raise FormatError("%s: record %d: length CRC mismatch" % (path, n))
        j = i + 12
        if j + length + 4 > len(data):
            raise FormatError("%s: record %d: truncated data" % (path, n))
        body = data[j:j + length]
        dcrc = struct.unpack("<I", data[j + length:j + length + 4])[0]
        if masked(crc32c(body)) != dcrc:
            raise FormatError("%s: record %d: data CRC mismatch" % (path, n))
        yield body
        i = j + length + 4
        n += 1


def read_events(path):
    """All events of one file; checks that the first is the file_version event."""
    events = [decode_event(b) for b in read_records(path)]
    if not events or events[0].get("file_version") != "brain.Event:2":
        raise FormatError("%s: first event is not file_version brain.Event:2" % path)
    if "tfevents" not in os.path.basename(path):
        raise FormatError("%s: file name lacks 'tfevents'" % path)
    return events


def event_files(p):
    if os.path.isdir(p):
        return sorted(os.path.join(p, f) for f in os.listdir(p) if "tfevents" in f)
    return [p]


def main(argv):
    try:
        if len(argv) >= 3 and argv[0] == "--scalars":
            tag = argv[1]
            for p in argv[2:]:
                for path in event_files(p):
                    for ev in read_events(path):
                        for v in ev.get("summary", []):
                            if v.get("tag") == tag:
                                print(ev.get("step", 0), repr(v.get("simple_value")))
            return 0
        if not argv:
            print(__doc__, file=sys.stderr)
            return 2
        for p in argv:
            for path in event_files(p):
                for ev in read_events(path):
                    print(json.dumps(ev))
        return 0
    except (FormatError, OSError, UnicodeDecodeError) as e:
        print("tb_read: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
