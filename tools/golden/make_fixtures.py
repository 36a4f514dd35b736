#!/usr/bin/python3
"""tools/golden/make_fixtures.py — PyTorch reference fixtures for the golden_* tests.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tools/golden/make_fixtures.py
It writes tests/golden/<case>.bin: inputs, weights, a random upstream gradient `dout`, and the
output and every gradient computed by PyTorch autograd in float64. The references are PyTorch's
own implementations wherever one exists (F.multi_head_attention_forward, F.gelu(approximate=
'tanh'), F.cross_entropy(label_smoothing=, ignore_index=)), not a transcription of the C code.
Linear weights are (out, in), as in nn.Linear and in the engine.

File format (little-endian): b"RVGOLD1\\0", u32 tensor count, then per tensor: u32 name
length, name bytes, u32 dtype (0 float64, 1 int32, 2 uint8), u32 ndim, u32 dims[ndim], data.
Reference gradients are named "d<input>".
"""
import os
import struct
import sys

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
EPS = 1e-6
IGNORE = -100
DTYPES = {torch.float64: 0, torch.int32: 1, torch.uint8: 2}


def write(case, tensors):
    path = os.path.join(OUT, case + ".bin")
    with open(path, "wb") as f:
        f.write(b"RVGOLD1\0")
        f.write(struct.pack("<I", len(tensors)))
        for name, t in tensors.items():
            t = t.detach().contiguous().cpu()
            f.write(struct.pack("<I", len(name)) + name.encode())
            f.write(struct.pack("<II", DTYPES[t.dtype], t.dim()))
            f.write(struct.pack("<%dI" % t.dim(), *t.shape))
            f.write(t.numpy().tobytes())
    print("%-20s %6d bytes" % (case, os.path.getsize(path)))


def param(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape, dtype=torch.float64) * scale + shift).requires_grad_()


def padding_mask(B, T):
    """1 = real token. Row 0 all real; other rows keep token 0 and lose some others."""
    m = (torch.rand(B, T) > 0.3).to(torch.uint8)
    m[0, :] = 1
    m[:, 0] = 1
    return m


def rmsnorm(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * g


def mlp(x, w0, w1, w2):
    return (F.gelu(x @ w0.T, approximate="tanh") * (x @ w1.T)) @ w2.T


def mha(xq, xkv, w, NH, kmask=None, causal=False):
    """PyTorch's multi-head attention, (B, T, C) in and out, no biases."""
    T, S = xq.shape[1], xkv.shape[1]
    attn_mask = torch.triu(torch.ones(T, S, dtype=torch.bool), 1) if causal else None
    kpm = (kmask == 0) if kmask is not None else None
    out, _ = F.multi_head_attention_forward(
        xq.transpose(0, 1), xkv.transpose(0, 1), xkv.transpose(0, 1), xq.shape[2], NH,
        None, None, None, None, False, 0.0, w["wo"], None, training=False,
        key_padding_mask=kpm, need_weights=False, attn_mask=attn_mask,
        use_separate_proj_weight=True, q_proj_weight=w["wq"], k_proj_weight=w["wk"],
        v_proj_weight=w["wv"])
    return out.transpose(0, 1)


def heads(NH):
    return torch.tensor([NH], dtype=torch.int32)


def attn_weights(C):
    return {k: param(C, C, scale=0.5) for k in ("wq", "wk", "wv", "wo")}


def finish(case, inputs, out, extra):
    """Backward of Σ out ⊙ dout; writes inputs, dout, out and all gradients."""
    dout = torch.randn(out.shape, dtype=torch.float64)
    (out * dout).sum().backward()
    tensors = dict(extra)
    for name, t in inputs.items():
        tensors[name] = t
    tensors["dout"] = dout
    tensors["out"] = out
    for name, t in inputs.items():
        if t.requires_grad:
            tensors["d" + name] = t.grad
    write(case, tensors)


def attention_case(kind, B=2, T=7, S=5, C=12, NH=3):
    x = param(B, T, C)
    w = attn_weights(C)
    inputs = {"x": x, **w}
    if kind == "cross":
        ctx = param(B, S, C)
        mask = padding_mask(B, S)
        inputs["ctx"] = ctx
        out = mha(x, ctx, w, NH, kmask=mask)
    else:
        mask = padding_mask(B, T)
        out = mha(x, x, w, NH, kmask=mask, causal=(kind == "causal"))
    finish("attention_" + kind, inputs, out, {"mask": mask, "heads": heads(NH)})


def rmsnorm_case(N=14, C=12):
    x, g = param(N, C, scale=2.0), param(C, scale=0.2, shift=1.0)
    finish("rmsnorm", {"x": x, "g": g}, rmsnorm(x, g), {})


def mlp_case(N=14, C=12, H=20):
    x = param(N, C)
    w0, w1, w2 = param(H, C, scale=0.5), param(H, C, scale=0.5), param(C, H, scale=0.5)
    finish("mlp", {"x": x, "w0": w0, "w1": w1, "w2": w2}, mlp(x, w0, w1, w2), {})


def perceiver_case(B=2, L=4, S=7, C=12, NH=3, H=20):
    lat, ctx = param(B, L, C), param(B, S, C)
    mask = padding_mask(B, S)
    ln = {k: param(C, scale=0.2, shift=1.0) for k in ("ln_attn", "ln_cross", "ln_ctx", "ln_mlp")}
    sa = {"attn." + k: v for k, v in attn_weights(C).items()}
    ca = {"cross." + k: v for k, v in attn_weights(C).items()}
    m = {"mlp.w0": param(H, C, scale=0.5), "mlp.w1": param(H, C, scale=0.5),
         "mlp.w2": param(C, H, scale=0.5)}
    strip = lambda d, p: {k[len(p):]: v for k, v in d.items()}
    h1 = lat + mha(rmsnorm(lat, ln["ln_attn"]), rmsnorm(lat, ln["ln_attn"]), strip(sa, "attn."), NH)
    h2 = h1 + mha(rmsnorm(h1, ln["ln_cross"]), rmsnorm(ctx, ln["ln_ctx"]), strip(ca, "cross."),
                  NH, kmask=mask)
    out = h2 + mlp(rmsnorm(h2, ln["ln_mlp"]), m["mlp.w0"], m["mlp.w1"], m["mlp.w2"])
    finish("perceiver", {"x": lat, "ctx": ctx, **ln, **sa, **ca, **m}, out,
           {"mask": mask, "heads": heads(NH)})


def crossentropy_case(N=14, V=11, smoothing=0.1):
    logits = param(N, V, scale=3.0)
    targets = torch.randint(0, V, (N,), dtype=torch.int64)
    targets[torch.rand(N) < 0.25] = IGNORE
    targets[0] = 1
    loss = F.cross_entropy(logits, targets, ignore_index=IGNORE, label_smoothing=smoothing)
    finish("crossentropy", {"logits": logits}, loss.reshape(1),
           {"targets": targets.to(torch.int32),
            "smoothing": torch.tensor([smoothing], dtype=torch.float64)})


def main():
    torch.manual_seed(20230618)
    os.makedirs(OUT, exist_ok=True)
    for kind in ("self", "causal", "cross"):
        attention_case(kind)
    rmsnorm_case()
    mlp_case()
    perceiver_case()
    crossentropy_case()
    return 0


if __name__ == "__main__":
    sys.exit(main())
