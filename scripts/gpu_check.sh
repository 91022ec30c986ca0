#!/usr/bin/env bash
# One GPU session's checks (run on a CUDA machine from the repo root; writes logs to ${OUT:-/tmp/gpu_check}):
# UNet and training benchmarks (fp32/bf16, channels_last, torch.compile) and a short 128px training run
# of scripts/train.py on a synthetic ImageNet-layout folder with a random ResNet-50 file as the encoder.
set -u
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
timeout 100 $PY scripts/bench_unet.py --configs tiny 128px --device cuda 2>&1 | tee "$OUT/bench_unet.txt"
timeout 230 $PY scripts/bench_train.py --configs tiny 128px --device cuda --iters 10 2>&1 | tee "$OUT/bench_train.txt"
$PY - <<'P'
import os, numpy as np, torch, torchvision
from PIL import Image
root = "/tmp/fake_imagenet"
for c in range(4):
    os.makedirs(f"{root}/n{c:08d}", exist_ok=True)
    for i in range(32):
        Image.fromarray(np.random.randint(0, 255, (160, 200, 3), np.uint8)).save(f"{root}/n{c:08d}/{i}.JPEG")
torch.save(torchvision.models.resnet50().state_dict(), "/tmp/resnet50_random.pth")
P
RCDM_WEIGHTS_SUPERVISED=/tmp/resnet50_random.pth timeout 150 $PY scripts/train.py --profile imagenet128 \
  --encoder supervised --layer backbone --data /tmp/fake_imagenet --out /tmp/run128 --steps 60 --batch-size 16 \
  --log-every 10 --ckpt-every 1000 --sample-every 0 --no-progress 2>&1 | tail -n 20 | tee "$OUT/train128.txt"
cp /tmp/run128/metrics.jsonl "$OUT/train128_metrics.jsonl" 2>/dev/null
