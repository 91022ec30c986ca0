#!/usr/bin/env bash
# One GPU session's work for the tiny profile with the CUDA-graph training steps (scripts/train_encoder.py and
# scripts/train.py --cuda-graph), run from the repo root on a CUDA machine, under one deadline BUDGET (seconds,
# default 520):
#   1. from scratch, alone on the GPU (its time is the from-scratch GPU time), in a copy of the working tree (so
#      the shipped files stay as they are here): scripts/gpu_tiny.sh with RCDM_OPTS=--cuda-graph, each stage
#      timed (encoders, upsampler, IC-GAN, RCDM), stopped AFTER_MIN s (default 150) before the deadline at the
#      latest;
#   2. then, side by side: the CUDA tests (tests/test_training.py and tests/test_encoders_tiny.py, -k cuda) and
#      AFTER=ft (default): the shipped slot RCDM trained further from its exported EMA model (train.py
#        --init-from ... --cuda-graph), then its EMA exported from the last checkpoint on the CPU;
#      AFTER=sweep: the encoder variants of VARIANTS (scripts/sweep_encoders.py, WORKERS at once), stopped at
#        the deadline; their results and files travel in sweep.tgz.
# $OUT receives stages.txt, ft/rcdm_slots.safetensors (+ manifest.json), graph.tgz (logs, metrics), sweep.tgz
# and the from-scratch tarball's 15 MB pieces (scratch/tiny_scratch.tgz.part_*): the device tool brings back
# 8 files of at most 16 MB.
set -u
OUT=${OUT:-/tmp/gpu_graph}; mkdir -p "$OUT/ft" "$OUT/scratch"
PY=${PY:-python3}
BUDGET=${BUDGET:-520}
PROFILE=${PROFILE:-tiny} DEVICE=${DEVICE:-cuda} AFTER=${AFTER:-ft}
# lr 1e-4: at the profile's 5e-4 the 30000-step model no longer improved; at 1e-4 every slot did (2026-11-27)
FT_OPTS=${FT_OPTS:-"--init-from artifacts/$PROFILE/rcdm/rcdm_slots.safetensors --seed 6 --lr 1e-4 --cuda-graph"}
LOGS=$PWD/runs/$PROFILE/gpu_graph; rm -rf "$LOGS"; mkdir -p "$LOGS"
source "$(dirname "$0")/gpu_common.sh"
stamp start

# 1. from scratch in a copy of the tree (its own artifacts, feature cache and runs), alone on the GPU: its time
SCRATCH=/tmp/rcdm_scratch; rm -rf "$SCRATCH"; mkdir -p "$SCRATCH"
tar cf - --exclude=./.git --exclude=./runs --exclude=./.cache --exclude=./book/_build . | tar xf - -C "$SCRATCH"
# gpu_tiny.sh bounds only its RCDM stage by BUDGET; `timeout` (which signals its whole process group) bounds the
# encoders too (on 2026-11-27 they alone outlasted the budget and the call ended before anything was packed)
SCRATCH_BUDGET=$(( $(left) - ${AFTER_MIN:-150} ))
( cd "$SCRATCH" && OUT=/tmp/rcdm_scratch_out BUDGET=$SCRATCH_BUDGET RCDM_OPTS="--cuda-graph --log-every 100" \
    PYTHONPATH="$SCRATCH" timeout $(( SCRATCH_BUDGET + 10 )) bash scripts/gpu_tiny.sh >"$LOGS/scratch.log" 2>&1
  stamp "from scratch rc=$?" )

# 2. the CUDA tests beside the rest
( timeout $(( $(left) - 20 )) $PY -m pytest -q tests/test_training.py tests/test_encoders_tiny.py -k cuda \
    -p no:cacheprovider >"$LOGS/pytest_cuda.log" 2>&1
  stamp "pytest -k cuda rc=$? ($(tail -n 1 "$LOGS/pytest_cuda.log"))" ) &

if [ "$AFTER" = sweep ]; then
  SWEEP=runs/$PROFILE/gpu_sweep; rm -rf "$SWEEP"
  $PY scripts/sweep_encoders.py --deadline $(( $(left) - 40 )) --profile $PROFILE --variants "$VARIANTS" \
    --out "$SWEEP" --workers ${WORKERS:-4} --device $DEVICE >"$LOGS/sweep.log" 2>&1
  stamp "sweep rc=$?"
  tar czf "$OUT/sweep.tgz" "$SWEEP"
else
  # AFTER=ft: the shipped RCDM, further, in the time left (at least AFTER_MIN s, default 150, were kept for it)
  RUN=runs/$PROFILE/gpu_ft; rm -rf "$RUN"
  ft() {  # extra options; the exit status of train.py (124: stopped at the deadline)
    timeout $(( $(left) - 45 )) $PY scripts/train.py --profile $PROFILE --device $DEVICE --threads 4 --no-progress \
      --out "$RUN" --steps 1000000 --ckpt-every ${FT_CKPT_EVERY:-1000} --log-every 100 --sample-every 0 $FT_OPTS "$@" \
      >>"$LOGS/ft.log" 2>&1
  }
  ft; RC=$?
  stamp "ft stopped rc=$RC"
  if [ $RC -ne 124 ] && ! ls "$RUN"/ckpt_*.pt >/dev/null 2>&1; then  # e.g. the capture failed
    rm -rf "$RUN"; ft --no-cuda-graph; stamp "ft without the graph stopped rc=$?"
  fi
  cp "$RUN/metrics.jsonl" "$LOGS/ft_metrics.jsonl" 2>/dev/null
  CKPT=$(ls "$RUN"/ckpt_*.pt 2>/dev/null | sort | tail -n 1)
  if [ -n "$CKPT" ]; then
    STEP=$(basename "$CKPT" .pt); STEP=$((10#${STEP#ckpt_}))
    $PY scripts/train.py --profile $PROFILE --device cpu --threads 4 --no-progress --out "$RUN" --resume --steps $STEP \
      $FT_OPTS --no-cuda-graph --export "$OUT/ft/rcdm_slots.safetensors" >>"$LOGS/ft.log" 2>&1
    stamp "ft exported step $STEP (rc=$?)"
  else
    stamp "ft: no checkpoint"
  fi
fi

wait
stamp "all done"
cp "$LOGS/stages.txt" "$OUT/"
tar czf "$OUT/graph.tgz" "$LOGS"
# the from-scratch run: its logs, encoders and RCDM (the upsampler and IC-GAN stay: their timings are in the logs)
( cd "$SCRATCH" && tar czf - runs/$PROFILE/gpu_logs artifacts/$PROFILE/encoders artifacts/$PROFILE/rcdm \
    | split -b 15m - "$OUT/scratch/tiny_scratch.tgz.part_" )
ls -lR "$OUT"
