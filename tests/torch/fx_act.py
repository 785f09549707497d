"""Fixtures for softmax, activations and elementwise ops (float64 from float32 inputs)."""


def gen(w, torch):
    F = torch.nn.functional

    def save(op, c, **kv):
        for k, v in kv.items():
            w(f"{op}.{c}.{k}", v)

    for c, (R, C, pos0) in enumerate([(4, 37, -1), (3, 300, -1), (6, 9, 3), (5, 20, 0)]):
        op = "softmax" if pos0 < 0 else "softmax_causal"
        c = c if pos0 < 0 else c - 2
        x = torch.randn(R, C) * 3
        dy = torch.randn(R, C)
        xd = x.double().requires_grad_()
        z = xd
        if pos0 >= 0:  # row r sees cols <= pos0 + r
            mask = torch.arange(C)[None, :] > (pos0 + torch.arange(R))[:, None]
            z = xd.masked_fill(mask, float("-inf"))
        out = torch.softmax(z, -1)
        out.backward(dy.double())
        save(op, c, x=x, out=out, dout=dy, dx=xd.grad, pos0=torch.tensor([pos0], dtype=torch.int32))

    def unary(op, fn, n, scale):
        for c, nn in enumerate(n):
            x = torch.randn(nn) * scale
            dy = torch.randn(nn)
            xd = x.double().requires_grad_()
            out = fn(xd)
            out.backward(dy.double())
            save(op, c, x=x, out=out, dout=dy, dx=xd.grad)

    unary("silu", F.silu, [37, 1000], 4)
    unary("gelu_erf", F.gelu, [37, 1000], 4)
    unary("gelu_tanh", lambda t: F.gelu(t, approximate="tanh"), [37, 1000], 4)

    def gated(op, act, n):
        for c, nn in enumerate(n):
            g, u, dy = torch.randn(nn) * 3, torch.randn(nn), torch.randn(nn)
            gd, ud = g.double().requires_grad_(), u.double().requires_grad_()
            out = act(gd) * ud
            out.backward(dy.double())
            save(op, c, gate=g, up=u, out=out, dout=dy, dgate=gd.grad, dup=ud.grad)

    gated("swiglu", F.silu, [37, 515])
    gated("geglu", F.gelu, [37, 515])
    gated("geglu_tanh", lambda t: F.gelu(t, approximate="tanh"), [37, 515])

    for c, nn in enumerate([37, 259]):
        a, b = torch.randn(nn), torch.randn(nn)
        save("add", c, a=a, b=b, out=a.double() + b.double())
        alpha = torch.tensor([0.37])
        save("axpy", c, y=a, x=b, a=alpha, out=a.double() + alpha.double() * b.double())
        s = torch.tensor([-1.7])
        save("scale", c, x=a, s=s, out=s.double() * a.double())
