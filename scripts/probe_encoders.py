"""Linear probes of every factor of the built-in data, per encoder, backbone vs head.

    python scripts/probe_encoders.py --profile tiny [--method simclr ...] [--out probes.json]

Probes are fitted on the first `encoders.probe.train_length` images of the train split and
scored on the val split: accuracy for categorical factors, R^2 for continuous ones. A randomly
initialised encoder of the same architecture is the reference row ("random").
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))   # this checkout's rcdm_lib, whatever the environment has installed

import torch  # noqa: E402

from rcdm_lib.config import add_settings_args, repo_path, settings_from_args  # noqa: E402
from rcdm_lib.data.shapes import FACTORS, FactorShapes  # noqa: E402
from rcdm_lib.encoders import get_encoder  # noqa: E402
from rcdm_lib.encoders.evaluation import embed, probe_factors  # noqa: E402
from rcdm_lib.encoders.tiny import METHODS, TinyEncoder, TinyEncoderConfig  # noqa: E402


def format_table(results: dict) -> str:
    names = [f.name for f in FACTORS]
    head = f"{'encoder':<12}{'layer':<10}{'dim':>5} " + " ".join(f"{n:>10}" for n in names)
    lines = [head, "-" * len(head)]
    for enc, layers in results.items():
        for layer, r in layers.items():
            cells = " ".join(f"{r['factors'][n]['value']:>10.3f}" for n in names)
            lines.append(f"{enc:<12}{layer:<10}{r['rep_dim']:>5} {cells}")
    lines.append("categorical factors: accuracy; continuous (scale, x, y, rotation): R^2. val split.")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(p)
    p.add_argument("--method", action="append", help="repeatable; default: every encoder file found")
    p.add_argument("--out", help="JSON output (default: <encoders.dir>/probes.json)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    prof = settings_from_args(args)
    ecfg, dcfg = prof.get("encoders") or {}, prof.get("data") or {}
    enc_dir = repo_path(ecfg.get("dir") or Path(prof["artifacts_dir"]) / "encoders")
    pcfg = ecfg.get("probe") or {}
    size, seed = int(dcfg.get("size", 32)), int(dcfg.get("seed", 0))
    lengths = dcfg.get("lengths") or {}
    t0 = time.time()
    tr_x, tr_f = FactorShapes("train", size, int(pcfg.get("train_length", 10000)), seed).all_uint8()
    va_x, va_f = FactorShapes("val", size, lengths.get("val"), seed).all_uint8()
    print(f"rendered probe data in {time.time() - t0:.1f}s", flush=True)
    methods = args.method or [m for m in METHODS if (enc_dir / f"{m}.safetensors").is_file()]
    results: dict = {}
    encoders = []
    torch.manual_seed(seed)
    rnd = TinyEncoder(TinyEncoderConfig(method="simclr", **(ecfg.get("model") or {}))).eval()
    encoders.append(("random", {"backbone": (rnd.features, rnd.backbone.rep_dim), "head": (rnd, rnd.head_dim)}))
    for m in methods:
        path = enc_dir / f"{m}.safetensors"
        encs = {layer: get_encoder(m, layer=layer, weights=path) for layer in ("backbone", "head")}
        encoders.append((m, {layer: (e, e.rep_dim) for layer, e in encs.items()}))
    for name, layers in encoders:
        results[name] = {}
        for layer, (fn, dim) in layers.items():
            t1 = time.time()
            a, b = embed(fn, tr_x), embed(fn, va_x)
            r = probe_factors(a, tr_f, b, va_f, FACTORS, epochs=int(pcfg.get("epochs", 50)))
            results[name][layer] = {"rep_dim": dim, "factors": r}
            print(f"{name:<12}{layer:<10} " + " ".join(f"{k}={v['value']:.3f}" for k, v in r.items())
                  + f"  ({time.time() - t1:.0f}s)", flush=True)
    print(format_table(results))
    out = Path(args.out) if args.out else enc_dir / "probes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"profile": args.profile, "train": {"split": "train", "length": len(tr_x)}, "eval": {"split": "val", "length": len(va_x)},
            "size": size, "seed": seed, "metrics": {f.name: ("accuracy" if f.kind == "categorical" else "r2") for f in FACTORS}}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
