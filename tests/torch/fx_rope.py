"""Fixtures for RoPE: interleaved written llama2.c-style, halves written HF-style
(rotate_half), partial rotary (dims >= rot pass through). Angles are float32 exactly as both
references compute them; the rotation itself is done in float64."""


def gen(w, torch):
    for layout, name in ((0, "rope_interleaved"), (1, "rope_halves")):
        for c, (T, H, hd, rot, theta) in enumerate([(5, 3, 64, 64, 10000.0), (4, 2, 40, 24, 500000.0),
                                                     (3, 2, 80, 20, 10000.0)]):
            P = 40
            # float32 as llama2.c / HF: inv_freq = 1 / theta^(2i/rot); angle = float(p) * inv_freq
            inv = 1.0 / (torch.tensor(theta, dtype=torch.float32) **
                         (torch.arange(0, rot, 2, dtype=torch.float32) / rot))
            ang = torch.outer(torch.arange(P, dtype=torch.float32), inv)  # [P, rot/2] float32
            cs32 = torch.stack([ang.cos(), ang.sin()], -1)                 # torch's float32 table
            cos, sin = ang.double().cos(), ang.double().sin()
            pos = torch.randint(0, P, (T,), dtype=torch.int32)
            x = torch.randn(T, H, hd)
            dy = torch.randn(T, H, hd)
            xd = x.double().requires_grad_()
            co = cos[pos.long()][:, None, :]  # [T, 1, rot/2]
            si = sin[pos.long()][:, None, :]
            xr, xp = xd[..., :rot], xd[..., rot:]
            if layout == 0:  # llama2.c: (v0, v1) -> (v0 fcr - v1 fci, v0 fci + v1 fcr)
                v0, v1 = xr[..., 0::2], xr[..., 1::2]
                y = torch.stack([v0 * co - v1 * si, v0 * si + v1 * co], -1).reshape(T, H, rot)
            else:  # HF: q * cos + rotate_half(q) * sin, cos = cat(freqs, freqs).cos()
                c2, s2 = torch.cat([co, co], -1), torch.cat([si, si], -1)
                x1, x2 = xr[..., :rot // 2], xr[..., rot // 2:]
                y = xr * c2 + torch.cat([-x2, x1], -1) * s2
            out = torch.cat([y, xp], -1)
            out.backward(dy.double())
            for k, v in dict(x=x, pos=pos, out=out, dout=dy, dx=xd.grad, cs=cs32,
                             rot=torch.tensor([rot], dtype=torch.int32),
                             theta=torch.tensor([theta])).items():
                w(f"{name}.{c}.{k}", v)
