#!/usr/bin/env bash
# Tiny-profile RCDM variants trained side by side on one GPU from the shipped encoders (artifacts/tiny/encoders),
# under one deadline, with an optional encoder sweep beside them (run from the repo root on a CUDA machine).
# Each variant is `name:train.py options` in RCDM_VARIANTS (separated by ';'); it trains until the deadline and
# its EMA weights are exported from its last checkpoint (scripts/train.py --resume --steps <that step>), so
# scripts/evaluate.py --weights can score it on any machine. A variant whose first start fails (e.g. torch.compile
# missing a compiler) is restarted once with --no-compile.
#   SWEEP=scripts/sweeps/tiny_dino.yaml  SWEEP_WORKERS=6   the sweep beside the RCDMs (SWEEP= for none); no install
# $OUT receives stages.txt, <variant>/rcdm_slots.safetensors (with its manifest.json) and gpu_rcdm.tgz (logs, metrics, sweep results and
# encoder files) only: the device tool brings back 8 files of at most 16 MB.
set -u
OUT=${OUT:-/tmp/gpu_rcdm}; mkdir -p "$OUT"
PY=${PY:-python3}
BUDGET=${BUDGET:-480}
PROFILE=${PROFILE:-tiny} DEVICE=${DEVICE:-cuda}
# default: the profile's batch 64 compiled and eager (steps per second is what the tiny model needs; the
# 2026-11-27 run used "b512:--batch-size 512 --lr 1e-3 --warmup-steps 500 --compile;b256:--batch-size 256 --lr 7e-4
# --warmup-steps 500 --compile", benchmarks/h100_2026-11-27_rcdm.md)
RCDM_VARIANTS=${RCDM_VARIANTS:-"b64c:--compile;b64:--no-compile"}
SWEEP=${SWEEP-scripts/sweeps/tiny_dino.yaml} SWEEP_WORKERS=${SWEEP_WORKERS:-6}
LOGS=runs/$PROFILE/gpu_rcdm; rm -rf "$LOGS"; mkdir -p "$LOGS"
source "$(dirname "$0")/gpu_common.sh"
stamp start
# the feature cache of every slot, computed once with all CPU threads (train.py then runs on 2 threads per variant)
$PY -c "from rcdm_lib.config import load_profile; from rcdm_lib.training.sources import tiny_slot_source
print(len(tiny_slot_source(load_profile('$PROFILE')).layout.names), 'slots cached')" 2>&1 | tee -a "$LOGS/stages.txt"
stamp "feature cache"

train_until_deadline() {  # run folder, train.py options: a fresh run until BUDGET-40 s; its exit status
  rm -rf "$1"
  timeout $(( $(left) - 40 )) $PY scripts/train.py --profile $PROFILE --device $DEVICE --threads 2 --no-progress \
    --out "$1" --steps 1000000 --sample-every 0 $2
}

variant() {  # name, options: train until BUDGET-40 s, then export the EMA of the last checkpoint
  local name=$1 opts=$2 run=runs/$PROFILE/gpu_rcdm_$1 t1=$(date +%s) rc
  train_until_deadline "$run" "$opts" >"$LOGS/$name.log" 2>&1; rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && ! ls "$run"/ckpt_*.pt >/dev/null 2>&1; then
    stamp "$name rc=$rc after $(( $(date +%s) - t1 )) s, restarting with --no-compile"
    train_until_deadline "$run" "$opts --no-compile" >>"$LOGS/$name.log" 2>&1; rc=$?
  fi
  cp "$run/metrics.jsonl" "$LOGS/${name}_metrics.jsonl" 2>/dev/null
  local ckpt=$(ls "$run"/ckpt_*.pt 2>/dev/null | sort | tail -n 1)
  [ -z "$ckpt" ] && { stamp "$name rc=$rc, no checkpoint"; return; }
  local step=$(basename "$ckpt" .pt); step=$((10#${step#ckpt_}))
  $PY scripts/train.py --profile $PROFILE --device $DEVICE --no-progress --out "$run" --resume --steps $step \
    $opts --no-compile --no-cuda-graph --export "$OUT/$name/rcdm_slots.safetensors" >>"$LOGS/$name.log" 2>&1
  stamp "$name rc=$rc, exported step $step (rc=$?)"
}

PIDS=()
IFS=';' read -ra VS <<<"$RCDM_VARIANTS"
for v in "${VS[@]}"; do variant "${v%%:*}" "${v#*:}" & PIDS+=($!); done
if [ -n "$SWEEP" ]; then
  $PY scripts/sweep_encoders.py --deadline $(( $(left) - 45 )) --profile $PROFILE --variants "$SWEEP" \
    --out runs/$PROFILE/gpu_sweep --workers $SWEEP_WORKERS --device $DEVICE >"$LOGS/sweep.log" 2>&1
  stamp "sweep rc=$?"
fi
for pid in "${PIDS[@]}"; do wait "$pid"; done
stamp "all done"
cp "$LOGS/stages.txt" "$OUT/"
tar czf "$OUT/gpu_rcdm.tgz" "$LOGS" $(ls runs/$PROFILE/gpu_sweep/* 2>/dev/null) 2>/dev/null
ls -l "$OUT"
