"""Loss / optimizer fixtures: fused softmax cross-entropy (F.cross_entropy, reduction none,
ignore_index; dlogits = grad of dscale * sum(loss)), torch.optim.AdamW over several steps, and the
sum of squares. References in float64 from float32 inputs; hyper-parameters are rounded to float32
first so that torch sees exactly the values the kernel gets."""
import struct


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def gen(w, torch):
    F = torch.nn.functional
    for name, T, V, ign_rows in (("small", 9, 1000, (2, 5)), ("vocab", 2, 152064, ())):
        logits = (torch.randn(T, V) * 3).float()
        y = torch.randint(0, V, (T,), dtype=torch.int64)
        for r in ign_rows:
            y[r] = -100
        valid = int((y != -100).sum())
        dscale = f32(1.0 / max(valid, 1))
        x = logits.double().requires_grad_(True)
        loss = F.cross_entropy(x, y, ignore_index=-100, reduction="none")
        (loss.sum() * dscale).backward()
        p = f"xent.{name}."
        w(p + "T", torch.tensor([T], dtype=torch.int32))
        w(p + "V", torch.tensor([V], dtype=torch.int32))
        w(p + "ignore_index", torch.tensor([-100], dtype=torch.int32))
        w(p + "dscale", torch.tensor([dscale]))
        w(p + "logits", logits)
        w(p + "y", y.to(torch.int32))
        w(p + "loss", loss)
        w(p + "dlogits", x.grad)

    # AdamW: torch decays p *= 1 - lr*wd BEFORE the Adam update (decoupled, pre-update p)
    n, steps = 1000, 5
    lr, b1, b2, eps, wd, gs = f32(1e-2), f32(0.9), f32(0.95), f32(1e-8), f32(0.1), 0.5
    p0 = torch.randn(n).float()
    g = torch.randn(steps, n).float()
    pd = p0.double().clone().requires_grad_(True)
    opt = torch.optim.AdamW([pd], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)
    for s in range(steps):
        pd.grad = g[s].double() * gs
        opt.step()
    st = opt.state[pd]
    w("adamw.n", torch.tensor([n], dtype=torch.int32))
    w("adamw.steps", torch.tensor([steps], dtype=torch.int32))
    for k, val in (("lr", lr), ("beta1", b1), ("beta2", b2), ("eps", eps), ("wd", wd), ("grad_scale", gs)):
        w("adamw." + k, torch.tensor([val]))
    w("adamw.p0", p0)
    w("adamw.g", g)
    w("adamw.p", pd.detach())
    w("adamw.m", st["exp_avg"])
    w("adamw.v", st["exp_avg_sq"])

    n = 100003
    x = torch.randn(n).float()
    s = float((x.double() ** 2).sum())
    hi = f32(s)
    w("sumsq.n", torch.tensor([n], dtype=torch.int32))
    w("sumsq.x", x)
    w("sumsq.out_hi", torch.tensor([hi]))
    w("sumsq.out_lo", torch.tensor([s - hi]))
