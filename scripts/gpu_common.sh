# Sourced by the GPU session scripts (gpu_tiny.sh, gpu_rcdm.sh, gpu_graph.sh) once LOGS (a fresh folder), PY and
# BUDGET are set: the environment, the clock (stamp: a timed line in $LOGS/stages.txt; left: seconds to BUDGET)
# and the machine's description in $LOGS/gpu.txt.
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$LOGS/stages.txt"; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$LOGS/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$LOGS/gpu.txt"
