"""Fixtures for the gemm family: torch.nn.functional.linear forward and autograd backward.

Per case c: linear.c<c>.{X [M,K], W [N,K], b [N], dY [M,N]} inputs (float32), and
{Y, dX, dW, db} computed in float64 from those float32 inputs; hasb = 0 means no bias
(b and db are then written as zeros and ignored). linear.ncase holds the case count."""


def gen(w, torch):
    cases = [(1, 64, 48, True), (7, 33, 17, True), (64, 128, 96, True), (5, 300, 129, False),
             (130, 257, 70, True)]
    for c, (M, K, N, hasb) in enumerate(cases):
        X = torch.randn(M, K, dtype=torch.float32)
        W = torch.randn(N, K, dtype=torch.float32) / K ** 0.5
        b = torch.randn(N, dtype=torch.float32) if hasb else torch.zeros(N, dtype=torch.float32)
        dY = torch.randn(M, N, dtype=torch.float32)
        Xd = X.double().requires_grad_(True)
        Wd = W.double().requires_grad_(True)
        bd = b.double().requires_grad_(True)
        Y = torch.nn.functional.linear(Xd, Wd, bd if hasb else None)
        Y.backward(dY.double())
        p = f"linear.c{c}."
        w(p + "X", X)
        w(p + "W", W)
        w(p + "b", b)
        w(p + "dY", dY)
        w(p + "Y", Y)
        w(p + "dX", Xd.grad)
        w(p + "dW", Wd.grad)
        w(p + "db", bd.grad if hasb else torch.zeros(N))
        w(p + "hasb", torch.tensor([1 if hasb else 0], dtype=torch.int32))
    w("linear.ncase", torch.tensor([len(cases)], dtype=torch.int32))
