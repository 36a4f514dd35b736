#!/usr/bin/python3
"""bench/train_step/torch_step.py — the reference training step of bench_train_step in PyTorch.

    bench_train_step --dump /tmp/step.bin
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 torch_step.py /tmp/step.bin check
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 torch_step.py /tmp/step.bin time \
        [--threads N] [--jit] [--steps N] [--warmup W]

The model is built from the dump the C benchmark writes, so both run the same weights on the
same tokens: T5 v1.1-style pre-norm encoder-decoder, no biases, RMSNorm (eps 1e-6), learned
absolute positions, gated-GELU MLP (tanh GELU), multi-head attention with key padding masks
(causal in the decoder's self-attention), tied output embedding, cross-entropy with label
smoothing over the real target tokens, global-norm clipping and torch.optim.AdamW (weight decay
on matrices only). Same layer types and the same matmul FLOPs as the C step.

check: one step in float64 (the reference) and in float32 from the dump's initial weights;
prints, for the C step and for PyTorch float32, the loss difference and the largest gradient and
updated-weight differences from the float64 reference (max |x - ref| / max |ref| per tensor,
the worst tensor named). Exit status 1 when the C step is further from the reference than the
bounds below.

time: median step time (forward, backward, clipping, AdamW), wall and process CPU time, over
--steps after --warmup, in float32, with --threads intra-op threads (the BLAS thread count is OPENBLAS_NUM_THREADS) and
optionally the model traced with torch.jit. Prints a RESULT line for run.sh.

Dump layout (little-endian, written by bench_train_step.c dump_step): b"RVTSTEP1"; int32 B, TS,
TT, C, NH, H, V, LE, LD, n_tensors; per tensor int32 name length, name, int32 ndim, int32
shape[ndim]; int32 src (B*TS), tgt_in (B*TT), targets (B*TT); uint8 src_mask (B*TS), tgt_mask
(B*TT); float32 lr, beta1, beta2, eps, weight_decay, clip_norm, smoothing; then float32 initial
weights, the loss, the gradients before clipping and the weights after the update, each the
concatenation of the tensors in table order.
"""
import argparse
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

GRAD_BOUND = 1e-3    # C float32 gradients vs the float64 reference, per tensor, normwise
LOSS_BOUND = 1e-5    # relative loss difference


class Dump:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        if data[:8] != b"RVTSTEP1":
            raise SystemExit("torch_step.py: %s is not a bench_train_step dump (bad magic)" % path)
        self.pos = 8
        self.data = data
        (self.B, self.TS, self.TT, self.C, self.NH, self.H, self.V, self.LE, self.LD,
         n) = self.ints(10)
        self.names, self.shapes = [], []
        for _ in range(n):
            (ln,) = self.ints(1)
            self.names.append(self.take(ln).decode())
            (nd,) = self.ints(1)
            self.shapes.append(tuple(self.ints(nd)))
        B, TS, TT = self.B, self.TS, self.TT
        self.src = self.array(np.int32, B * TS).reshape(B, TS)
        self.tgt_in = self.array(np.int32, B * TT).reshape(B, TT)
        self.targets = self.array(np.int32, B * TT).reshape(B, TT)
        self.src_mask = self.array(np.uint8, B * TS).reshape(B, TS).astype(bool)
        self.tgt_mask = self.array(np.uint8, B * TT).reshape(B, TT).astype(bool)
        (self.lr, self.beta1, self.beta2, self.eps, self.weight_decay, self.clip,
         self.smoothing) = self.array(np.float32, 7).tolist()
        self.w0 = self.tensors()
        (self.loss,) = self.array(np.float32, 1).tolist()
        self.grads = self.tensors()
        self.w1 = self.tensors()
        if self.pos != len(data):
            raise SystemExit("torch_step.py: %s has %d bytes past the end of the dump"
                             % (path, len(data) - self.pos))

    def take(self, n):
        if self.pos + n > len(self.data):
            raise SystemExit("torch_step.py: dump truncated at byte %d" % self.pos)
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def ints(self, n):
        return struct.unpack("<%di" % n, self.take(4 * n))

    def array(self, dtype, n):
        return np.frombuffer(self.take(np.dtype(dtype).itemsize * n), dtype=dtype).copy()

    def tensors(self):
        return {name: torch.from_numpy(self.array(np.float32, int(np.prod(shape))).reshape(shape))
                for name, shape in zip(self.names, self.shapes)}


def rmsnorm(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * g


def attention(xq, xkv, wq, wk, wv, wo, allowed, NH):
    """allowed: bool (B, 1, T, S) or (B, 1, 1, S), True where query t may see key s."""
    B, T, C = xq.shape
    S, HS = xkv.shape[1], C // NH
    q = (xq @ wq.t()).view(B, T, NH, HS).transpose(1, 2)
    k = (xkv @ wk.t()).view(B, S, NH, HS).transpose(1, 2)
    v = (xkv @ wv.t()).view(B, S, NH, HS).transpose(1, 2)
    s = (q @ k.transpose(-1, -2)) * (1.0 / HS ** 0.5)
    p = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
    y = (p @ v).transpose(1, 2).reshape(B, T, C)
    return y @ wo.t()


def mlp(x, w0, w1, w2):
    return (F.gelu(x @ w0.t(), approximate="tanh") * (x @ w1.t())) @ w2.t()


class Model(torch.nn.Module):
    """The step's forward pass; parameters named as in the C tensor table."""

    def __init__(self, d, weights, dtype):
        super().__init__()
        self.d = d
        self.names = d.names
        self.params = torch.nn.ParameterList(
            [torch.nn.Parameter(weights[n].to(dtype).clone()) for n in d.names])

    def forward(self, src, tgt_in, targets, src_allowed, tgt_allowed, cross_allowed):
        d, w = self.d, dict(zip(self.names, self.params))
        x = F.embedding(src, w["wte"]) + w["wpe_enc"]
        for i in range(d.LE):
            p = "enc.%d." % i
            n = rmsnorm(x, w[p + "ln_attn"])
            x = x + attention(n, n, w[p + "attn.wq"], w[p + "attn.wk"], w[p + "attn.wv"],
                              w[p + "attn.wo"], src_allowed, d.NH)
            x = x + mlp(rmsnorm(x, w[p + "ln_mlp"]), w[p + "mlp.w0"], w[p + "mlp.w1"],
                        w[p + "mlp.w2"])
        ctx = rmsnorm(x, w["ln_enc"])
        y = F.embedding(tgt_in, w["wte"]) + w["wpe_dec"]
        for i in range(d.LD):
            p = "dec.%d." % i
            n = rmsnorm(y, w[p + "ln_attn"])
            y = y + attention(n, n, w[p + "attn.wq"], w[p + "attn.wk"], w[p + "attn.wv"],
                              w[p + "attn.wo"], tgt_allowed, d.NH)
            y = y + attention(rmsnorm(y, w[p + "ln_cross"]), ctx, w[p + "cross.wq"],
                              w[p + "cross.wk"], w[p + "cross.wv"], w[p + "cross.wo"],
                              cross_allowed, d.NH)
            y = y + mlp(rmsnorm(y, w[p + "ln_mlp"]), w[p + "mlp.w0"], w[p + "mlp.w1"],
                        w[p + "mlp.w2"])
        logits = rmsnorm(y, w["ln_dec"]) @ w["wte"].t()
        return F.cross_entropy(logits.view(-1, d.V), targets.view(-1), ignore_index=-100,
                               label_smoothing=d.smoothing)


def inputs(d):
    src = torch.from_numpy(d.src).long()
    tgt_in = torch.from_numpy(d.tgt_in).long()
    targets = torch.from_numpy(d.targets).long()
    smask = torch.from_numpy(d.src_mask)
    tmask = torch.from_numpy(d.tgt_mask)
    causal = torch.tril(torch.ones(d.TT, d.TT, dtype=torch.bool))
    src_allowed = smask[:, None, None, :]
    tgt_allowed = tmask[:, None, None, :] & causal[None, None]
    return src, tgt_in, targets, src_allowed, tgt_allowed, src_allowed


def make_step(d, model, fwd, foreach):
    decay = [p for n, p in zip(model.names, model.params) if p.dim() > 1]
    no_decay = [p for n, p in zip(model.names, model.params) if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": d.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=d.lr, betas=(d.beta1, d.beta2), eps=d.eps, foreach=foreach)
    args = inputs(d)

    def step(keep_grads=None):
        opt.zero_grad(set_to_none=True)
        loss = fwd(*args)
        loss.backward()
        if keep_grads is not None:
            keep_grads.extend(p.grad.detach().clone() for p in model.params)
        torch.nn.utils.clip_grad_norm_(model.params, d.clip)
        opt.step()
        return loss

    return step


def rel(x, ref):
    den = ref.abs().max().item()
    return (x.double() - ref).abs().max().item() / (den if den > 0 else 1.0)


def worst(values, ref, names):
    errs = [(rel(values[n], ref[n]), n) for n in names]
    return max(errs)


def check(d):
    results = {}
    for dtype in (torch.float64, torch.float32):
        model = Model(d, d.w0, dtype)
        step = make_step(d, model, model, foreach=False)
        grads = []
        loss = step(grads).item()
        results[dtype] = (loss, dict(zip(d.names, [g.double() for g in grads])),
                          dict(zip(d.names, [p.detach().double() for p in model.params])))
    ref_loss, ref_g, ref_w = results[torch.float64]
    c_g = {n: d.grads[n].double() for n in d.names}
    c_w = {n: d.w1[n].double() for n in d.names}
    t_loss, t_g, t_w = results[torch.float32]
    w0 = {n: d.w0[n].double() for n in d.names}
    print("check: one step from identical weights; differences from PyTorch float64")
    print("  loss: float64 %.7f, C %.7f (rel %.2e), torch float32 %.7f (rel %.2e)"
          % (ref_loss, d.loss, abs(d.loss - ref_loss) / ref_loss, t_loss,
             abs(t_loss - ref_loss) / ref_loss))
    cg, tg = worst(c_g, ref_g, d.names), worst(t_g, ref_g, d.names)
    print("  gradients, max|x - ref| / max|ref| per tensor, worst: C %.2e (%s), torch float32 "
          "%.2e (%s)" % (cg[0], cg[1], tg[0], tg[1]))
    # Adam's first update is ±lr·sign(g) (m̂/sqrt(v̂) = g/|g|): the weights can differ by 2·lr
    # only where a gradient is so close to 0 that rounding flips its sign.
    cw = max((c_w[n] - ref_w[n]).abs().max().item() for n in d.names)
    tw = max((t_w[n] - ref_w[n]).abs().max().item() for n in d.names)
    moved = max((ref_w[n] - w0[n]).abs().max().item() for n in d.names)
    flips_c = sum(int(((c_w[n] - ref_w[n]).abs() > 0.5 * d.lr).sum()) for n in d.names)
    flips_t = sum(int(((t_w[n] - ref_w[n]).abs() > 0.5 * d.lr).sum()) for n in d.names)
    total = sum(w0[n].numel() for n in d.names)
    print("  updated weights, max |x - ref| (the update itself moves them by up to %.2e): C %.2e, "
          "torch float32 %.2e; elements off by more than lr/2: C %d, torch float32 %d of %d"
          % (moved, cw, tw, flips_c, flips_t, total))
    ok = abs(d.loss - ref_loss) / ref_loss <= LOSS_BOUND and cg[0] <= GRAD_BOUND
    print("RESULT check=%s loss_rel=%.3g grad_rel=%.3g torch32_grad_rel=%.3g weight_abs=%.3g"
          % ("ok" if ok else "FAILED", abs(d.loss - ref_loss) / ref_loss, cg[0], tg[0], cw))
    return 0 if ok else 1


def timing(d, threads, jit, steps, warmup):
    torch.set_num_threads(threads)
    model = Model(d, d.w0, torch.float32)
    fwd = model
    if jit:
        fwd = torch.jit.trace(model, inputs(d), check_trace=False)
    step = make_step(d, model, fwd, foreach=True)
    times, cpus = [], []
    for s in range(warmup + steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step().item()
        t, c = time.perf_counter() - t0, time.process_time() - c0
        if s >= warmup:
            times.append(t)
            cpus.append(c)
        print("step %3d%s loss %.4f  %.1f ms (cpu %.1f ms)"
              % (s, " (warm-up)" if s < warmup else "", loss, t * 1e3, c * 1e3), flush=True)
    m, mc = statistics.median(times), statistics.median(cpus)
    print("torch %s, %d threads, jit %s: step median %.1f ms, cpu %.1f ms, over %d steps"
          % (torch.__version__, threads, "trace" if jit else "off", m * 1e3, mc * 1e3, steps))
    print("RESULT torch_step_ms=%.2f torch_cpu_ms=%.2f threads=%d jit=%d"
          % (m * 1e3, mc * 1e3, threads, int(jit)))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump")
    ap.add_argument("mode", choices=["check", "time"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jit", action="store_true")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    if a.threads < 1 or a.steps < 1 or a.warmup < 0:
        ap.error("--threads and --steps must be >= 1, --warmup >= 0")
    d = Dump(a.dump)
    if a.mode == "check":
        return check(d)
    return timing(d, a.threads, a.jit, a.steps, a.warmup)


if __name__ == "__main__":
    sys.exit(main())
