#!/usr/bin/env bash
# The tiny profile's models trained from scratch on one GPU, each stage timed (run from the repo root on a
# CUDA machine; logs and a tarball of the results go to ${OUT:-/tmp/gpu_tiny}):
#   1. the profile's encoders, one scripts/train_encoder.py process per method, all at once (ENCODERS=train,
#      the default: the from-scratch path), or the encoder sweep (ENCODERS=sweep: VARIANTS, every variant at
#      once, installs each method's best variant); meanwhile the upsampler trains (it needs no encoder);
#   2. the slot RCDM (scripts/train.py --profile tiny) and, beside it, the IC-GAN on the new encoders.
# RCDM_OPTS: extra scripts/train.py options for the RCDM (e.g. --compile).
# BUDGET (seconds, default 560) bounds the whole script: the RCDM stops at the deadline and its last
# checkpoint travels in the tarball, so `scripts/train.py --profile tiny --resume` finishes it elsewhere.
# $OUT receives stages.txt and the tarball's 15 MB pieces only (the device tool brings back 8 files at
# most); the logs travel inside the tarball, under runs/<profile>/gpu_logs/.
set -u
OUT=${OUT:-/tmp/gpu_tiny}; mkdir -p "$OUT"
PY=${PY:-python3}
BUDGET=${BUDGET:-560}
PROFILE=${PROFILE:-tiny} DEVICE=${DEVICE:-cuda} VARIANTS=${VARIANTS:-scripts/sweeps/tiny_encoders.yaml}
LOGS=runs/$PROFILE/gpu_logs; rm -rf "$LOGS"; mkdir -p "$LOGS"
source "$(dirname "$0")/gpu_common.sh"
stamp start
( $PY scripts/train_superres.py --profile $PROFILE --export --device $DEVICE --threads 2 --no-progress >"$LOGS/superres.log" 2>&1
  stamp "superres rc=$?" ) &
if [ "${ENCODERS:-train}" = sweep ]; then
  $PY scripts/sweep_encoders.py --deadline $(( BUDGET - 350 )) --profile $PROFILE --variants $VARIANTS \
    --out runs/$PROFILE/sweep --workers 22 --device $DEVICE --install >"$LOGS/sweep.log" 2>&1
  stamp "sweep rc=$?"
else
  METHODS=$($PY -c "from rcdm_lib.config import load_profile; print(*load_profile('$PROFILE')['encoders']['methods'])")
  PIDS=()
  for m in $METHODS; do
    $PY scripts/train_encoder.py --profile $PROFILE --export --device $DEVICE --method $m >"$LOGS/encoder_$m.log" 2>&1 &
    PIDS+=($!)
  done
  RCS=""; for pid in "${PIDS[@]}"; do wait "$pid"; RCS="$RCS $?"; done
  stamp "encoders ($METHODS) rc:$RCS"
fi
( $PY scripts/train_icgan.py --profile $PROFILE --export --device $DEVICE --threads 2 --no-progress >"$LOGS/icgan.log" 2>&1
  stamp "icgan rc=$?" ) &
LEFT=$(( BUDGET - 25 - ($(date +%s) - T0) ))
timeout $LEFT $PY scripts/train.py --profile $PROFILE --export --device $DEVICE --threads 8 --no-progress ${RCDM_OPTS:-} \
  >"$LOGS/rcdm.log" 2>&1
RC=$?
stamp "rcdm rc=$RC (limit ${LEFT} s)"
if [ $RC -ne 0 ] && [ $RC -ne 124 ] && ! ls runs/$PROFILE/rcdm/ckpt_*.pt >/dev/null 2>&1 && [ -n "${RCDM_OPTS:-}" ]; then
  # a first start that failed before its first checkpoint (e.g. a compile or capture error): once more without
  rm -rf runs/$PROFILE/rcdm
  LEFT=$(( BUDGET - 25 - ($(date +%s) - T0) ))
  timeout $LEFT $PY scripts/train.py --profile $PROFILE --export --device $DEVICE --threads 8 --no-progress \
    --no-cuda-graph --no-compile >>"$LOGS/rcdm.log" 2>&1
  stamp "rcdm without RCDM_OPTS rc=$? (limit ${LEFT} s)"
fi
cp runs/$PROFILE/rcdm/metrics.jsonl "$LOGS/rcdm_metrics.jsonl" 2>/dev/null
wait
stamp "all done"
# one tarball in 15 MB pieces (the device tool brings back files of at most 16 MB)
CKPT=$(ls -t runs/$PROFILE/rcdm/ckpt_*.pt 2>/dev/null | head -n 1)
cp "$LOGS/stages.txt" "$OUT/"
KEEP=("$LOGS"); for f in artifacts/$PROFILE runs/$PROFILE/sweep/results.jsonl runs/$PROFILE/sweep/winners.yaml $CKPT; do
  [ -e "$f" ] && KEEP+=("$f"); done
tar czf - "${KEEP[@]}" | split -b 15m - "$OUT/${PROFILE}_gpu.tgz.part_"
ls -l "$OUT"
