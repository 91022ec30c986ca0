"""Train several tiny-encoder variants side by side and rank them by their linear shape probe.

    python scripts/sweep_encoders.py --profile tiny --variants variants.yaml --out runs/sweep [--workers 4]

`variants.yaml` is a list; each entry names a variant and overrides the profile's `encoders:`
settings for its method (the same keys as `encoders.per_method.<method>` in _config.yml):

    - {name: dino_ema95, method: dino, steps: 1400, train: {batch_size: 128}, loss: {ema_start: 0.95}}

Each variant trains in its own process (one CPU thread each, the device from --device) on the
profile's train split, then its backbone is probed: a linear probe and a k-NN classifier of
the shape class, fitted on `encoders.probe.train_length` train images and scored on the val
split (the numbers of scripts/probe_encoders.py). Each variant logs its loss every 100 steps to
`<out>/<name>.log`; results are appended to `<out>/results.jsonl` as each variant finishes, and
a ranked table is printed; the encoder files are kept in <out>.
The winner's settings go into `encoders.per_method` of the profile; `scripts/train_encoder.py`
then retrains it with its provenance in the manifest.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import yaml  # noqa: E402

from rcdm_lib.config import add_settings_args, repo_path, resolve_device, settings_from_args  # noqa: E402

def variant_config(profile: dict, variant: dict):
    """EncoderTrainConfig of a variant: the profile's settings for its method under the variant's keys."""
    from rcdm_lib.encoders.training import encoder_train_config

    if not isinstance(variant, dict) or "name" not in variant or "method" not in variant:
        raise ValueError(f"variant {variant!r}: expected a mapping with a name, a method and any of "
                         "steps, train, model, loss, augment")
    rest = {k: v for k, v in variant.items() if k not in ("name", "method")}
    try:
        return encoder_train_config(profile, variant["method"], rest).resolved()
    except ValueError as e:
        raise ValueError(f"variant {variant['name']!r}: {e}") from None


def install_winners(results: list[dict], out: Path, enc_dir: Path, command: str, machine: dict | None = None,
                    methods=None) -> dict:
    """Copy the best variant of each method (highest shape probe) to <enc_dir>/<method>.safetensors
    with a manifest entry; return the per-method settings that reproduce them (for _config.yml).
    `machine`: the hardware record when the sweep ran elsewhere (default: this machine's);
    `methods`: install only these."""
    import shutil

    from rcdm_lib.artifacts import record_artifact

    winners: dict = {}
    for r in sorted(results, key=lambda r: -r["shape_probe"]):
        winners.setdefault(r["method"], r)
    settings = {}
    for method, r in sorted(winners.items()):
        if methods is not None and method not in methods:
            continue
        path = enc_dir / f"{method}.safetensors"
        enc_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / f"{r['name']}.safetensors", path)
        record_artifact(path, command=f"{command}  # variant {r['name']}", device=r["device"], machine=machine,
                        train_seconds=r["train_seconds"], steps=r["steps"], variant=r["variant"], data=r["data"],
                        final_loss=r["final_loss"], shape_probe=r["shape_probe"])
        settings[method] = {k: v for k, v in r["variant"].items() if k not in ("name", "method")}
        print(f"installed {r['name']} as {path} (shape probe {r['shape_probe']:.3f})", flush=True)
    (out / "winners.yaml").write_text(yaml.safe_dump(settings, sort_keys=True))
    return settings


def _run_variant(args) -> dict:
    profile, variant, out, device = args
    torch.set_num_threads(1)
    from rcdm_lib.data.shapes import FactorShapes
    from rcdm_lib.encoders.evaluation import embed, knn_accuracy, linear_probe_accuracy
    from rcdm_lib.encoders.tiny import save_tiny_encoder
    from rcdm_lib.encoders.training import train_tiny_encoder

    dcfg, pcfg = profile.get("data") or {}, (profile.get("encoders") or {}).get("probe") or {}
    size, seed, lengths = int(dcfg.get("size", 32)), int(dcfg.get("seed", 0)), dcfg.get("lengths") or {}
    cfg = variant_config(profile, variant)
    ds = FactorShapes("train", size, lengths.get("train"), seed)
    images, factors = ds.all_uint8()
    log_path = Path(out) / f"{variant['name']}.log"  # progress of a long variant: tail -f <out>/<name>.log

    def log(line: str) -> None:
        with open(log_path, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    # on a GPU the step is one CUDA graph (launch-bound otherwise); ignored on a CPU
    model, hist = train_tiny_encoder(images, factors["shape"], cfg, device=device, progress=False, log=log,
                                     cuda_graph=True)
    save_tiny_encoder(model, Path(out) / f"{variant['name']}.safetensors",
                      extra={"train": hist["config"], "data": ds.spec, "seconds": hist["seconds"]})
    n_probe = int(pcfg.get("train_length", 10000))
    tr_x, tr_f = images[:n_probe], {k: v[:n_probe] for k, v in factors.items()}
    va_x, va_f = FactorShapes("val", size, lengths.get("val"), seed).all_uint8()
    model = model.to(device)
    a, b = embed(model.features, tr_x, device=device), embed(model.features, va_x, device=device)
    probe = linear_probe_accuracy(a, tr_f["shape"], b, va_f["shape"], epochs=int(pcfg.get("epochs", 50)))
    knn = knn_accuracy(a, tr_f["shape"], b, va_f["shape"])
    res = {"name": variant["name"], "method": cfg.method, "variant": variant, "shape_probe": round(probe, 4),
           "shape_knn": round(knn, 4), "train_seconds": round(hist["seconds"], 1), "final_loss": hist["loss"][-1],
           "steps": cfg.steps, "data": ds.spec, "device": str(device)}
    with open(Path(out) / "results.jsonl", "a") as f:
        f.write(json.dumps(res) + "\n")
    print(f"{res['name']:<28} probe {probe:.3f} knn {knn:.3f} {hist['seconds']:.0f}s", flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(p)
    p.add_argument("--variants", required=True, help="YAML list of variants (see above)")
    p.add_argument("--out", required=True, help="folder for results.jsonl and the encoder files")
    p.add_argument("--workers", type=int, default=2, help="variants trained at once (one CPU thread each)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: the profile's device)")
    p.add_argument("--install-dir", help="with --install: this folder instead of the profile's encoders.dir")
    p.add_argument("--deadline", type=float, help="seconds: stop the variants still training then, keep the finished")
    p.add_argument("--install", action="store_true",
                   help="copy each method's best variant into the profile's encoders folder, with a manifest entry, "
                        "and write <out>/winners.yaml (the encoders.per_method settings that reproduce them)")
    args = p.parse_args(argv)
    profile = settings_from_args(args)
    variants = yaml.safe_load(Path(args.variants).read_text())
    if not isinstance(variants, list) or not variants:
        raise SystemExit(f"{args.variants}: expected a YAML list of variants, got {type(variants).__name__}")
    for v in variants:  # fail before any training starts
        variant_config(profile, v)
    names = [v["name"] for v in variants]
    if len(set(names)) != len(names):
        raise SystemExit(f"{args.variants}: variant names must be unique, got {names}")
    out = repo_path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = str(resolve_device(args.device or profile.get("device", "auto")))
    print(f"{len(variants)} variants, {args.workers} at once on {device}; results in {out}/results.jsonl", flush=True)
    jobs = [(profile, v, str(out), device) for v in variants]
    results: list[dict] = []
    deadline = time.time() + args.deadline if args.deadline else None
    with mp.get_context("spawn").Pool(min(args.workers, len(jobs))) as pool:
        it = pool.imap_unordered(_run_variant, jobs)
        for _ in jobs:
            try:
                results.append(it.next(timeout=None if deadline is None else max(1.0, deadline - time.time())))
            except mp.TimeoutError:
                done = {r["name"] for r in results}
                print(f"deadline of {args.deadline:.0f} s reached; stopped {[n for n in names if n not in done]}",
                      flush=True)
                pool.terminate()
                break
    if not results:
        raise SystemExit("no variant finished")
    print(f"\n{'variant':<28}{'method':<12}{'probe':>7}{'k-NN':>7}{'train s':>9}")
    for r in sorted(results, key=lambda r: (r["method"], -r["shape_probe"])):
        print(f"{r['name']:<28}{r['method']:<12}{r['shape_probe']:>7.3f}{r['shape_knn']:>7.3f}"
              f"{r['train_seconds']:>9.0f}")
    if args.install:
        from rcdm_lib.artifacts import command_line

        command = command_line("scripts/sweep_encoders.py", sys.argv[1:])
        install_winners(results, out, repo_path(args.install_dir or (profile.get("encoders") or {})["dir"]), command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
