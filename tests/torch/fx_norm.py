"""Fixtures for the norm family. torch 1.13 has no F.rms_norm: the formula is written out."""


def gen(w, torch):
    F = torch.nn.functional
    for op, off in (("rmsnorm", 0.0), ("rmsnorm_1p", 1.0)):
        for c, (T, D, eps) in enumerate([(5, 67, 1e-5), (3, 1024, 1e-6)]):
            x = torch.randn(T, D) * 2 + 0.3
            wt = torch.randn(D) * 0.3 + (0.0 if off else 1.0)
            dy = torch.randn(T, D)
            xd, wd = x.double().requires_grad_(), wt.double().requires_grad_()
            r = torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + eps)
            out = xd * r * (wd + off)
            out.backward(dy.double())
            for k, v in dict(x=x, w=wt, out=out, rstd=r.reshape(T), dout=dy, dx=xd.grad, dw=wd.grad,
                             eps=torch.tensor([eps])).items():
                w(f"{op}.{c}.{k}", v)
    for c, (T, D, eps, bias) in enumerate([(5, 67, 1e-5, True), (4, 768, 1e-5, False), (2, 33, 1e-3, True)]):
        x = torch.randn(T, D) * 3 + 5.0  # a large mean exercises the two-pass variance
        wt = torch.randn(D) * 0.3 + 1
        b = torch.randn(D) * 0.1
        dy = torch.randn(T, D)
        xd, wd = x.double().requires_grad_(), wt.double().requires_grad_()
        bd = b.double().requires_grad_() if bias else None
        out = F.layer_norm(xd, (D,), wd, bd, eps)
        out.backward(dy.double())
        mean = xd.detach().mean(-1)
        rstd = torch.rsqrt(xd.detach().var(-1, unbiased=False) + eps)
        rec = dict(x=x, w=wt, out=out, mean=mean, rstd=rstd, dout=dy, dx=xd.grad, dw=wd.grad,
                   eps=torch.tensor([eps]))
        if bias:
            rec.update(b=b, db=bd.grad)
        for k, v in rec.items():
            w(f"layernorm.{c}.{k}", v)
