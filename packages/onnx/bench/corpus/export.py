#!/usr/bin/python3
"""Build the growability benchmark's corpus: real architectures exported to ONNX.

Run with Debian's interpreter, which sees python3-torch (1.13), python3-torchvision (0.14) and python3-onnx (1.12):

    /usr/bin/python3 packages/onnx/bench/corpus/export.py              # export what is missing
    /usr/bin/python3 packages/onnx/bench/corpus/export.py --summary    # print the corpus table
    /usr/bin/python3 packages/onnx/bench/corpus/export.py --models resnet18,mobilenet_v2 --opsets 13

Every model is built with ``weights=None`` (random weights, fixed seed), then given non-trivial normalisation
parameters: BatchNorm/LayerNorm/GroupNorm affine weights and biases are drawn at random, and BatchNorm running
statistics are calibrated on random inputs (train-mode forward passes with a cumulative average), so that BN is
neither the identity nor blowing activations up. Weights torchvision initialises to zero (ViT's head) get random
values and ConvNeXt's layer scales (1e-6 at init) values in [0.1, 1), so that the output depends on every layer;
constant (zero-initialised) biases get small random values, as in a trained model (equal initializers would be
deduplicated by the exporter into Identity nodes). The model is exported in eval mode with
``training=TrainingMode.PRESERVE``: torch's default (EVAL) export folds BatchNormalization into the preceding Conv,
which would hide the per-channel ops this corpus exists to exercise.

Exports go to ``$GRADMAX_CORPUS_DIR`` (default ``~/.cache/gradmax/corpus``), never into the repository. Existing
exports are skipped (idempotent); every file, and ``manifest.json``, is written to a temporary name and renamed.
A model that fails to export is recorded under ``failures`` in the manifest; the script goes on with the others.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

SEED = 0
OPSETS = (13, 17)


def corpus_dir():
    d = os.environ.get("GRADMAX_CORPUS_DIR")
    if d:
        return os.path.abspath(d)
    return os.path.join(os.path.expanduser("~"), ".cache", "gradmax", "corpus")


# ---------------------------------------------------------------------------------------------------------------
# Models. Each entry: name -> (builder, input shape at export, dynamic axes of the input, opsets).
# Builders import torch lazily so that `--help` and `--summary` work without it.


def _tv(fn_name, **kwargs):
    def build():
        import torchvision.models as tvm

        return getattr(tvm, fn_name)(weights=None, **kwargs)

    return build


def _audio1d():
    import torch.nn as nn

    def block(cin, cout, k, stride=1, dilation=1):
        pad = dilation * (k - 1) // 2
        return [nn.Conv1d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=False),
                nn.BatchNorm1d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16, 9, stride=4),
        *block(16, 32, 5, stride=2),
        *block(32, 32, 3, dilation=2),  # dilated
        *block(32, 64, 3, dilation=4),  # dilated
        nn.MaxPool1d(2),
        *block(64, 64, 3),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def _conv3d():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv3d(3, 16, 3, padding=1, bias=False), nn.BatchNorm3d(16), nn.ReLU(),
        nn.Conv3d(16, 32, 3, padding=1, bias=False), nn.BatchNorm3d(32), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(32, 5),
    )


def _unet():
    import torch
    import torch.nn as nn

    def cbr(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class SmallUNet(nn.Module):
        """Two-level U-Net: Concat skips, a ConvTranspose2d and an Upsample decoder step."""

        def __init__(self):
            super().__init__()
            self.enc1 = nn.Sequential(cbr(3, 16), cbr(16, 16))
            self.enc2 = cbr(16, 32)
            self.mid = cbr(32, 64)
            self.pool = nn.MaxPool2d(2)
            self.up2 = nn.ConvTranspose2d(64, 32, 2, stride=2)
            self.dec2 = cbr(64, 32)
            self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
            self.red1 = cbr(32, 16)
            self.dec1 = cbr(32, 16)
            self.head = nn.Conv2d(16, 3, 1)

        def forward(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            m = self.mid(self.pool(e2))
            d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
            d1 = self.dec1(torch.cat([self.red1(self.up1(d2)), e1], dim=1))
            return self.head(d1)

    return SmallUNet()


def _transformer():
    import math

    import torch
    import torch.nn as nn

    class EncoderBlock(nn.Module):
        """Pre-norm transformer encoder block with separate q/k/v projections and an Erf-GELU FFN."""

        def __init__(self, features=32, dim=64, heads=4, ffn=256, classes=10):
            super().__init__()
            self.heads = heads
            self.embed = nn.Linear(features, dim)
            self.ln1 = nn.LayerNorm(dim)
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)
            self.o = nn.Linear(dim, dim)
            self.ln2 = nn.LayerNorm(dim)
            self.fc1 = nn.Linear(dim, ffn)
            self.act = nn.GELU()  # exact form: exported with Erf
            self.fc2 = nn.Linear(ffn, dim)
            self.ln3 = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, classes)

        def forward(self, x):
            b, t, _ = x.shape
            h = self.embed(x)
            y = self.ln1(h)
            dh = y.shape[-1] // self.heads

            def split(z):
                return z.reshape(b, t, self.heads, dh).transpose(1, 2)

            q, k, v = split(self.q(y)), split(self.k(y)), split(self.v(y))
            att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), dim=-1)
            y = (att @ v).transpose(1, 2).reshape(b, t, -1)
            h = h + self.o(y)
            h = h + self.fc2(self.act(self.fc1(self.ln2(h))))
            return self.head(self.ln3(h).mean(dim=1))

    return EncoderBlock()


IMG64 = [1, 3, 64, 64]
BATCH = {"input": {0: "batch"}}

MODELS = {
    "resnet18": (_tv("resnet18"), IMG64, BATCH),
    "resnet50": (_tv("resnet50"), IMG64, BATCH),
    "resnext50_32x4d": (_tv("resnext50_32x4d"), IMG64, BATCH),
    "wide_resnet50_2": (_tv("wide_resnet50_2"), IMG64, BATCH),
    "mobilenet_v2": (_tv("mobilenet_v2"), IMG64, BATCH),
    "mobilenet_v3_small": (_tv("mobilenet_v3_small"), IMG64, BATCH),
    "mobilenet_v3_large": (_tv("mobilenet_v3_large"), IMG64, BATCH),
    "efficientnet_b0": (_tv("efficientnet_b0"), IMG64, BATCH),
    "efficientnet_b1": (_tv("efficientnet_b1"), IMG64, BATCH),
    "regnet_x_400mf": (_tv("regnet_x_400mf"), IMG64, BATCH),
    "regnet_y_400mf": (_tv("regnet_y_400mf"), IMG64, BATCH),
    "shufflenet_v2_x0_5": (_tv("shufflenet_v2_x0_5"), IMG64, BATCH),
    "shufflenet_v2_x1_0": (_tv("shufflenet_v2_x1_0"), IMG64, BATCH),
    "squeezenet1_1": (_tv("squeezenet1_1"), IMG64, BATCH),
    "densenet121": (_tv("densenet121"), IMG64, BATCH),
    "googlenet": (_tv("googlenet", aux_logits=False, init_weights=True), IMG64, BATCH),
    "mnasnet0_5": (_tv("mnasnet0_5"), IMG64, BATCH),
    "convnext_tiny": (_tv("convnext_tiny"), IMG64, BATCH),
    "swin_t": (_tv("swin_t"), IMG64, BATCH),
    "vit_b_16": (_tv("vit_b_16", image_size=64), IMG64, BATCH),
    # VGG keeps AdaptiveAvgPool2d(7); torch exports an adaptive pool only when the input size is a multiple of the
    # output size, so the features must be 7x7: input 224.
    "vgg11_bn": (_tv("vgg11_bn"), [1, 3, 224, 224], BATCH),
    # Non-torchvision patterns the issue names.
    "audio1d": (_audio1d, [1, 1, 1600], {"input": {0: "batch", 2: "time"}}),
    "conv3d": (_conv3d, [1, 3, 8, 32, 32], BATCH),
    "unet_dynamic": (_unet, IMG64, {"input": {0: "batch", 2: "height", 3: "width"},
                                     "output": {0: "batch", 2: "height", 3: "width"}}),
    "transformer_block": (_transformer, [1, 16, 32], {"input": {0: "batch", 1: "tokens"}}),
}


# ---------------------------------------------------------------------------------------------------------------


def make_nontrivial(model, input_shape):
    """Random affine params for every norm layer; BatchNorm running statistics calibrated on random inputs; no weight
    left all zero and no near-zero layer scale."""
    import torch
    import torch.nn as nn

    g = torch.Generator().manual_seed(SEED + 1)
    bns = []
    with torch.no_grad():
        for pname, p in model.named_parameters():
            # Zero-initialised weights (ViT's head) would make the output blind to every upstream change; ConvNeXt's
            # layer scale (1e-6 at init) nearly so. Give them values a trained model could have.
            if p.dim() >= 2 and not bool(p.any()):
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
            elif pname.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.9 + 0.1)  # U(0.1, 1)
            elif pname.endswith("bias") and p.numel() > 1 and bool((p == p.flatten()[0]).all()):
                # Constant (zero-initialised) biases: torch's exporter deduplicates equal initializers and feeds the
                # copies through Identity nodes, which a trained model (distinct biases) never shows.
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for m in model.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
                w = getattr(m, "weight", None)
                b = getattr(m, "bias", None)
                if w is not None:
                    w.copy_(torch.rand(w.shape, generator=g) + 0.5)  # U(0.5, 1.5)
                if b is not None:
                    b.copy_(torch.randn(b.shape, generator=g) * 0.2)
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                bns.append(m)
        if bns:
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative moving average over the calibration batches
            model.train()
            shape = list(input_shape)
            shape[0] = 4
            for _ in range(3):
                model(torch.randn(shape, generator=g))
            for m in bns:
                m.momentum = 0.1
            # Calibrated stats are non-trivial already (mean != 0, var != 1); assert it so a silent no-op shows.
            for m in bns:
                if float(m.running_var.sub(1).abs().max()) < 1e-3 and float(m.running_mean.abs().max()) < 1e-3:
                    raise RuntimeError("BatchNorm calibration left identity statistics")
    model.eval()


def atomic_write_bytes(path, write):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=d)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_manifest(out):
    p = os.path.join(out, "manifest.json")
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return {"version": 1, "models": [], "failures": []}


def save_manifest(out, manifest):
    manifest["models"].sort(key=lambda e: (e["name"], e["opset"]))

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")

    atomic_write_bytes(os.path.join(out, "manifest.json"), write)


def export_one(name, opsets, out, manifest, force):
    import torch

    builder, input_shape, dyn = MODELS[name]
    todo = []
    for opset in opsets:
        file = f"{name}-op{opset}.onnx"
        have = any(e["name"] == name and e["opset"] == opset for e in manifest["models"])
        if have and os.path.exists(os.path.join(out, file)) and not force:
            continue
        todo.append((opset, file))
    if not todo:
        print(f"skip {name}: exported already", file=sys.stderr)
        return
    torch.manual_seed(SEED)
    try:
        model = builder()
        make_nontrivial(model, input_shape)
    except Exception as e:  # noqa: BLE001 - recorded, not fatal
        for opset, _ in todo:
            record_failure(manifest, name, opset, "build", e)
        save_manifest(out, manifest)
        return
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(input_shape, generator=torch.Generator().manual_seed(SEED + 2))
    for opset, file in todo:
        path = os.path.join(out, file)
        t0 = time.time()
        try:
            def write(tmp):
                # Not under no_grad: nn.MultiheadAttention takes its fused fast path (aten::_native_multi_head_attention,
                # which torch 1.13 cannot export) when grad is disabled in eval mode.
                torch.onnx.export(
                    model, (x,), tmp,
                    opset_version=opset,
                    input_names=["input"], output_names=["output"],
                    dynamic_axes={"output": {0: "batch"}, **dyn},
                    training=torch.onnx.TrainingMode.PRESERVE,
                    do_constant_folding=True,
                )
                import onnx

                onnx.checker.check_model(tmp)

            atomic_write_bytes(path, write)
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            record_failure(manifest, name, opset, "export", e)
            save_manifest(out, manifest)
            continue
        secs = time.time() - t0
        manifest["models"] = [e for e in manifest["models"] if not (e["name"] == name and e["opset"] == opset)]
        manifest["failures"] = [e for e in manifest["failures"] if not (e["name"] == name and e["opset"] == opset)]
        manifest["models"].append({
            "name": name,
            "opset": opset,
            "file": file,
            "inputShape": list(input_shape),
            "dynamicAxes": {str(k): v for k, v in dyn["input"].items()},
            "exportSeconds": round(secs, 2),
            "params": params,
            "bytes": os.path.getsize(path),
        })
        save_manifest(out, manifest)
        print(f"exported {file} in {secs:.1f} s ({params / 1e6:.2f} M params)", file=sys.stderr)


def record_failure(manifest, name, opset, stage, e):
    msg = f"{type(e).__name__}: {e}".strip().splitlines()
    short = " ".join(msg)[:500]
    print(f"FAILED {name} opset {opset} ({stage}): {short}", file=sys.stderr)
    if os.environ.get("GRADMAX_CORPUS_TRACE"):
        traceback.print_exc()
    manifest["failures"] = [f for f in manifest["failures"] if not (f["name"] == name and f["opset"] == opset)]
    manifest["failures"].append({"name": name, "opset": opset, "stage": stage, "error": short})


def summary(out):
    import onnx

    manifest = load_manifest(out)
    rows = []
    for e in manifest["models"]:
        m = onnx.load(os.path.join(out, e["file"]), load_external_data=False)
        ops = {}
        for n in m.graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        rows.append((e["name"], e["opset"], len(m.graph.node), ops.get("Conv", 0) + ops.get("ConvTranspose", 0),
                     ops.get("Gemm", 0), ops.get("MatMul", 0), e["bytes"] / 2**20))
    print("| model | opset | nodes | Conv(+T) | Gemm | MatMul | MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]:.1f} |")
    print(f"\n{len(rows)} exports in {out}; total {sum(r[6] for r in rows):.0f} MB")
    for f in manifest["failures"]:
        print(f"failed: {f['name']} opset {f['opset']} ({f['stage']}): {f['error']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="comma-separated subset of: " + ",".join(MODELS))
    ap.add_argument("--opsets", default=",".join(map(str, OPSETS)), help="comma-separated opsets (default 13,17)")
    ap.add_argument("--out", default=corpus_dir(), help="cache directory (default $GRADMAX_CORPUS_DIR or "
                    "~/.cache/gradmax/corpus)")
    ap.add_argument("--force", action="store_true", help="re-export models that exist already")
    ap.add_argument("--summary", action="store_true", help="print the corpus table and exit")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args()
    if args.list:
        print("\n".join(MODELS))
        return 0
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    if args.summary:
        summary(out)
        return 0
    names = args.models.split(",") if args.models else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    opsets = [int(o) for o in args.opsets.split(",")]
    import torch

    torch.set_num_threads(1)  # the machines this runs on are shared
    import warnings

    warnings.filterwarnings("ignore")
    manifest = load_manifest(out)
    for name in names:
        export_one(name, opsets, out, manifest, args.force)
    failed = [f for f in manifest["failures"] if f["name"] in names]
    print(f"corpus: {out} ({len(manifest['models'])} exports, {len(manifest['failures'])} failures)", file=sys.stderr)
    if failed:
        print(f"{len(failed)} export(s) failed; see failures in manifest.json", file=sys.stderr)
    return 0  # failures are recorded, not fatal


if __name__ == "__main__":
    sys.exit(main())
