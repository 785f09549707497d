#!/usr/bin/env python3
"""gguf_rename.py IN OUT OLD NEW [--copy]: a copy of a GGUF file with tensor OLD named NEW, or with
--add, a new F32 tensor OLD of the comma-separated values NEW appended (1-D), or with
--copy, a tensor NEW added that shares OLD's data, or with NEW = "-", OLD dropped (its bytes stay,
unreferenced: the data section is copied verbatim, tensor offsets are relative to it). Crafts regression inputs at test time, such as
a tensor named blk.2147483647.ffn_up.weight; standard library only."""
import struct
import sys

SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def main():
    src, dst, old, new = sys.argv[1:5]
    copy = "--copy" in sys.argv[5:]
    add = "--add" in sys.argv[5:]
    buf = open(src, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = buf[pos:pos + n]
        pos += n
        return s

    def value(t):
        if t in SCALAR:
            return take(SCALAR[t])
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        raise ValueError("unknown GGUF value type %d" % t)

    assert buf[:4] == b"GGUF", "not a GGUF file"
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    kv_start = pos
    align = 32
    for _ in range(n_kv):
        key = string()
        t = take("I")
        v = value(t)
        if key == b"general.alignment":
            align = v
    kv_bytes = buf[kv_start:pos]
    infos = []
    found = False
    for _ in range(n_tensors):
        name = string()
        nd = take("I")
        dims = [take("Q") for _ in range(nd)]
        typ, off = take("I"), take("Q")
        if name == old.encode():
            found = True
            if new == "-":
                continue
            if copy:
                infos.append((new.encode(), dims, typ, off))
            else:
                name = new.encode()
        infos.append((name, dims, typ, off))
    data_start = (pos + align - 1) // align * align
    data = buf[data_start:]
    if add:  # OLD = name, NEW = "v0,v1,...": an F32 vector at the end of the data section
        vals = [float(v) for v in new.split(",")]
        off = (len(data) + align - 1) // align * align
        data = data + b"\0" * (off - len(data)) + struct.pack("<%df" % len(vals), *vals)
        infos.append((old.encode(), [len(vals)], 0, off))
        found = True
    assert found, "no tensor named %s" % old
    out = bytearray(b"GGUF" + struct.pack("<IQQ", version, len(infos), n_kv) + kv_bytes)
    for name, dims, typ, off in infos:
        out += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", typ, off)
    out += b"\0" * ((len(out) + align - 1) // align * align - len(out))
    out += data
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main()
