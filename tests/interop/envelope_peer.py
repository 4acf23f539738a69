#!/usr/bin/python3
"""A batch-envelope peer that zkit did not write: built from docs/wire-format.md alone, with
python3-msgpack (and python3-zstandard for compressed batches).

  envelope_peer.py write DIR   writes py_*.bin batches and DIR/py_manifest.json describing them
  envelope_peer.py check DIR   decodes the zkit_*.bin batches listed in DIR/zkit_manifest.json and
                               checks every field and payload; exit status 1 on any mismatch

Manifests: {"batches": [{"file", "producer_id", "seq", "created_ns", "flags", "records": [hex]}]}.
"""
import json
import os
import struct
import sys

import msgpack

VERSION = 1
ZSTD = 1  # flags bits 0-2: 0 none, 1 zstd
LIMIT_RECORDS = 1 << 20
LIMIT_BYTES = 64 << 20


def zstd_compress(data):
    import zstandard  # only the compressed case needs it

    # The docs require the zstd frame to declare its content size: write_content_size (default on).
    return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(data)


def zstd_decompress(data):
    import zstandard

    return zstandard.ZstdDecompressor().decompress(data, max_output_size=LIMIT_BYTES)


def batch(producer_id, seq, created_ns, records, compress=False):
    """The docs' v1 array, in msgpack-python's own (smallest) encodings."""
    records = [bytes(r) for r in records]
    if compress:
        inner = msgpack.packb(records, use_bin_type=True)
        return msgpack.packb([VERSION, ZSTD, producer_id, seq, created_ns, zstd_compress(inner)],
                             use_bin_type=True)
    return msgpack.packb([VERSION, 0, producer_id, seq, created_ns, records], use_bin_type=True)


def wide_batch(producer_id, seq, created_ns, records):
    """The same array with the widest encodings the docs allow readers to meet: array32 at the top,
    version as uint8, flags as uint16, producer_id as uint32, records as array16 of bin32."""
    out = bytearray(b"\xdd" + struct.pack(">I", 6))
    out += b"\xcc" + struct.pack(">B", VERSION)
    out += b"\xcd" + struct.pack(">H", 0)
    out += b"\xce" + struct.pack(">I", producer_id)
    out += b"\xcf" + struct.pack(">Q", seq)
    out += b"\xcf" + struct.pack(">Q", created_ns)
    out += b"\xdc" + struct.pack(">H", len(records))
    for r in records:
        out += b"\xc6" + struct.pack(">I", len(r)) + bytes(r)
    return bytes(out)


def write(directory):
    big = bytes(i % 251 for i in range(70000))
    cases = [
        ("py_plain.bin", dict(producer_id=7, seq=1, created_ns=1764064800123456789,
                              records=[b"hello", b"", b"\x00\xff" * 10])),
        ("py_zstd.bin", dict(producer_id=2**64 - 1, seq=2, created_ns=1,
                             records=[b"compressible record %d" % (i % 10) for i in range(500)],
                             compress=True)),
        ("py_empty.bin", dict(producer_id=9, seq=3, created_ns=0, records=[])),
        ("py_many.bin", dict(producer_id=300, seq=2**32, created_ns=2**63,
                             records=[b"r%d" % i for i in range(19)] + [big, b"x" * 256])),
        ("py_wide.bin", dict(producer_id=65536, seq=5, created_ns=6,
                             records=[b"wide", b"", b"forms"]), "wide"),
    ]
    manifest = []
    for case in cases:
        name, spec = case[0], case[1]
        if len(case) > 2:
            frame = wide_batch(spec["producer_id"], spec["seq"], spec["created_ns"],
                               spec["records"])
        else:
            frame = batch(**spec)
        with open(os.path.join(directory, name), "wb") as f:
            f.write(frame)
        manifest.append({"file": name, "producer_id": spec["producer_id"], "seq": spec["seq"],
                         "created_ns": spec["created_ns"], "flags": ZSTD if spec.get("compress") else 0,
                         "records": [r.hex() for r in spec["records"]]})
    with open(os.path.join(directory, "py_manifest.json"), "w") as f:
        json.dump({"batches": manifest}, f)
    print("envelope_peer: wrote %d batches" % len(manifest))


def decode(frame):
    """Decodes a batch as the docs describe, with limits; raises ValueError naming the problem."""
    top = msgpack.unpackb(frame, raw=False, max_bin_len=LIMIT_BYTES, max_array_len=LIMIT_RECORDS,
                          max_str_len=0, max_map_len=0, max_ext_len=0)
    if not isinstance(top, list) or len(top) != 6:
        raise ValueError("not a 6-element array")
    version, flags, producer_id, seq, created_ns, records = top
    if version != VERSION:
        raise ValueError("unsupported batch version %r" % version)
    for name, v in (("flags", flags), ("producer_id", producer_id), ("seq", seq),
                    ("created_ns", created_ns)):
        if not isinstance(v, int) or v < 0 or v >= 2**64:
            raise ValueError("%s is not a uint64" % name)
    if flags & ~7:
        raise ValueError("unknown flag bits %#x" % flags)
    if flags & 7 == ZSTD:
        if not isinstance(records, bytes):
            raise ValueError("compressed records are not bin")
        records = msgpack.unpackb(zstd_decompress(records), raw=False, max_bin_len=LIMIT_BYTES,
                                  max_array_len=LIMIT_RECORDS, max_str_len=0, max_map_len=0,
                                  max_ext_len=0)
    elif flags & 7 != 0:
        raise ValueError("unsupported compression %d" % (flags & 7))
    if not isinstance(records, list) or not all(isinstance(r, bytes) for r in records):
        raise ValueError("records are not an array of bin")
    return dict(flags=flags, producer_id=producer_id, seq=seq, created_ns=created_ns,
                records=records)


def check_writer_layout(name, frame, flags):
    """What the docs say the zkit writer emits: a fixed 30-byte header, then array32 or bin32."""
    want = b"\x96\x01" + bytes([flags]) + b"\xcf"
    if frame[:4] != want or frame[12:13] != b"\xcf" or frame[21:22] != b"\xcf":
        return "%s: header is not the documented zkit layout: %s" % (name, frame[:30].hex(" "))
    if frame[30:31] != (b"\xc6" if flags == ZSTD else b"\xdd"):
        return "%s: byte 30 is %s" % (name, frame[30:31].hex())
    return None


def check(directory):
    with open(os.path.join(directory, "zkit_manifest.json")) as f:
        manifest = json.load(f)["batches"]
    failures = []
    for want in manifest:
        name = want["file"]
        with open(os.path.join(directory, name), "rb") as f:
            frame = f.read()
        try:
            got = decode(frame)
        except (ValueError, msgpack.exceptions.ExtraData, msgpack.exceptions.UnpackException) as e:
            failures.append("%s: %s" % (name, e))
            continue
        for field in ("flags", "producer_id", "seq", "created_ns"):
            if got[field] != want[field]:
                failures.append("%s: %s is %r, expected %r" % (name, field, got[field], want[field]))
        records = [bytes.fromhex(r) for r in want["records"]]
        if got["records"] != records:
            failures.append("%s: records differ (%d decoded, %d expected)"
                            % (name, len(got["records"]), len(records)))
        layout = check_writer_layout(name, frame, want["flags"])
        if layout:
            failures.append(layout)
    for f in failures:
        print("envelope_peer: FAIL " + f)
    print("envelope_peer: checked %d batches, %d failures" % (len(manifest), len(failures)))
    return 1 if failures else 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("write", "check"):
        print(__doc__)
        return 2
    if argv[1] == "write":
        write(argv[2])
        return 0
    return check(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
