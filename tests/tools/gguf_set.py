#!/usr/bin/env python3
"""Copy a GGUF file, setting or removing metadata keys: crafted inputs for the tests.

usage: gguf_set.py IN OUT KEY=TYPE:VALUE ... | -KEY ...
  TYPE: u32 i32 u64 i64 f32 bool str.  -KEY removes KEY.
Tensor infos and data are copied unchanged (offsets are relative to the data section, which
starts at the next multiple of general.alignment, default 32). Written from the GGUF v3 spec.
"""
import struct
import sys

SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
TYPES = {"u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "u64": 10, "i64": 11}


def read_value(b, o, t):
    if t in SCALARS:
        n = struct.calcsize("<" + SCALARS[t])
        return b[o:o + n], o + n
    if t == 8:
        (n,) = struct.unpack_from("<Q", b, o)
        return b[o:o + 8 + n], o + 8 + n
    if t == 9:
        et, cnt = struct.unpack_from("<IQ", b, o)
        start, p = o, o + 12
        for _ in range(cnt):
            _, p = read_value(b, p, et)
        return b[start:p], p
    raise SystemExit(f"gguf_set: unknown value type {t}")


def encode(tname, text):
    t = TYPES[tname]
    if tname == "str":
        v = text.encode()
        return t, struct.pack("<Q", len(v)) + v
    if tname == "bool":
        return t, struct.pack("<?", text.lower() in ("1", "true", "yes"))
    if tname == "f32":
        return t, struct.pack("<f", float(text))
    return t, struct.pack("<" + SCALARS[t], int(text))


def main():
    src, dst, edits = sys.argv[1], sys.argv[2], sys.argv[3:]
    b = open(src, "rb").read()
    magic, ver, n_t, n_kv = struct.unpack_from("<4sIQQ", b, 0)
    assert magic == b"GGUF" and ver >= 2, "not a GGUF v2/v3 file"
    o = 24
    kvs = []
    align = 32
    for _ in range(n_kv):
        (kl,) = struct.unpack_from("<Q", b, o)
        key = b[o + 8:o + 8 + kl].decode()
        (t,) = struct.unpack_from("<I", b, o + 8 + kl)
        val, o2 = read_value(b, o + 12 + kl, t)
        if key == "general.alignment":
            (align,) = struct.unpack_from("<I", val)
        kvs.append([key, t, val])
        o = o2
    tinfo_start = o
    for _ in range(n_t):
        (nl,) = struct.unpack_from("<Q", b, o)
        (nd,) = struct.unpack_from("<I", b, o + 8 + nl)
        o += 8 + nl + 4 + 8 * nd + 4 + 8
    tinfo = b[tinfo_start:o]
    data = b[(o + align - 1) // align * align:] if n_t else b""
    for e in edits:
        if e.startswith("-"):
            kvs = [kv for kv in kvs if kv[0] != e[1:]]
            continue
        key, spec = e.split("=", 1)
        tname, text = spec.split(":", 1)
        t, val = encode(tname, text)
        for kv in kvs:
            if kv[0] == key:
                kv[1], kv[2] = t, val
                break
        else:
            kvs.append([key, t, val])
    out = bytearray(struct.pack("<4sIQQ", b"GGUF", ver, n_t, len(kvs)))
    for key, t, val in kvs:
        k = key.encode()
        out += struct.pack("<Q", len(k)) + k + struct.pack("<I", t) + val
    out += tinfo
    if n_t:
        out += b"\0" * ((-len(out)) % align)
        out += data
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main()
