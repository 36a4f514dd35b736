#!/usr/bin/python3
"""bench/layers/torch_layers.py — the same items as bench_layers, in PyTorch (CPU), for scale.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/layers/torch_layers.py [threads] [reps]

Pre-norm T5-style blocks without biases (RMSNorm, F.multi_head_attention_forward with a key
padding mask, gated-GELU MLP), float32, forward and backward through autograd; median of
`reps` runs after 2 warm-ups, GFLOP/s counted as in bench_layers.c.
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

B, TS, TT, C, NH, H, V = 32, 64, 16, 256, 4, 1024, 8000


def rms(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * g


def mha(xq, xkv, w, kpm, causal):
    T, S = xq.shape[1], xkv.shape[1]
    mask = torch.triu(torch.ones(T, S, dtype=torch.bool), 1) if causal else None
    out, _ = F.multi_head_attention_forward(
        xq.transpose(0, 1), xkv.transpose(0, 1), xkv.transpose(0, 1), C, NH, None, None, None,
        None, False, 0.0, w[3], None, training=True, key_padding_mask=kpm, need_weights=False,
        attn_mask=mask, use_separate_proj_weight=True, q_proj_weight=w[0], k_proj_weight=w[1],
        v_proj_weight=w[2])
    return out.transpose(0, 1)


def p(*shape, scale=0.06):
    return (torch.randn(*shape) * scale).requires_grad_()


def block(x, ctx, kpm, ckpm, w, causal, cross):
    h = x + mha(rms(x, w["ln1"]), rms(x, w["ln1"]), w["attn"], kpm, causal)
    if cross:
        h = h + mha(rms(h, w["ln2"]), ctx, w["cross"], ckpm, False)
    n = rms(h, w["ln3"])
    return h + (F.gelu(n @ w["w0"].T, approximate="tanh") * (n @ w["w1"].T)) @ w["w2"].T


def macs(T, S, cross):
    tok = B * T
    m = tok * (4.0 * C * C + 3.0 * C * H) + 2.0 * tok * T * C
    if cross:
        m += tok * 2.0 * C * C + 2.0 * B * S * C * C + 2.0 * tok * S * C
    return m


def run(name, T, S, causal, cross, reps):
    w = {"ln1": p(C, scale=0) + 1, "ln2": p(C, scale=0) + 1, "ln3": p(C, scale=0) + 1,
         "attn": [p(C, C) for _ in range(4)], "cross": [p(C, C) for _ in range(4)],
         "w0": p(H, C), "w1": p(H, C), "w2": p(C, H, scale=0.03)}
    x, ctx = p(B, T, C, scale=1), torch.randn(B, S, C)
    kpm = torch.zeros(B, T, dtype=torch.bool)
    kpm[:, T - 2:] = True
    ckpm = torch.zeros(B, S, dtype=torch.bool)
    ckpm[:, S - 3:] = True
    dout = torch.randn(B, T, C)
    tf, tb = [], []
    for r in range(reps + 2):
        t0 = time.perf_counter()
        out = block(x, ctx, kpm, ckpm, w, causal, cross)
        t1 = time.perf_counter()
        out.backward(dout)
        t2 = time.perf_counter()
        if r >= 2:
            tf.append(t1 - t0)
            tb.append(t2 - t1)
    f, b = statistics.median(tf), statistics.median(tb)
    print("%-34s fwd %7.2f ms  bwd %7.2f ms  %6.1f GFLOP/s" %
          (name, f * 1e3, b * 1e3, 6 * macs(T, S, cross) / (f + b) / 1e9))


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print("torch %s, %d threads, median of %d runs" % (torch.__version__, threads, reps))
    a, b = torch.randn(B * TS, C), torch.randn(H, C)
    ts = []
    for r in range(reps + 2):
        t0 = time.perf_counter()
        a @ b.T
        if r >= 2:
            ts.append(time.perf_counter() - t0)
    m = statistics.median(ts)
    print("%-34s %7.2f ms  %6.1f GFLOP/s (reference)" % ("matmul 2048x1024x256", m * 1e3,
                                                          2.0 * B * TS * H * C / m / 1e9))
    run("encoder block B=32 T=64", TS, TS, False, False, reps)
    run("decoder block B=32 T=16 S=64", TT, TS, True, True, reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
