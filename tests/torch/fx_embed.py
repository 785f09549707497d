"""Fixtures for the embed family: token embedding gather / scatter-add, learned positions."""


def gen(w, torch):
    for c, (T, V, D) in enumerate([(7, 11, 19), (33, 5, 64)]):
        tok = torch.randint(0, V, (T,), dtype=torch.int32)
        table = torch.randn(V, D)
        dy = torch.randn(T, D)
        td = table.double().requires_grad_()
        out = td[tok.long()]
        out.backward(dy.double())
        for k, v in dict(tok=tok, table=table, out=out, dout=dy, dtable=td.grad).items():
            w(f"embed.{c}.{k}", v)
    for c, (T, P, D, pos0) in enumerate([(5, 12, 17, 3), (16, 16, 48, 0)]):
        x = torch.randn(T, D)
        pos = torch.randn(P, D)
        dy = torch.randn(T, D)
        xd, pd = x.double().requires_grad_(), pos.double().requires_grad_()
        out = xd + pd[pos0:pos0 + T]
        out.backward(dy.double())
        for k, v in dict(x=x, pos=pos, out=out, dout=dy, dx=xd.grad, dpos=pd.grad,
                         pos0=torch.tensor([pos0], dtype=torch.int32)).items():
            w(f"posemb.{c}.{k}", v)
