#!/bin/sh
# elbsim trials (or tune) as a Slurm job array of N shards, then a merge job.
#
#   sbatch deploy/slurm/array.sh            # submits the array and the dependent merge
#
# Each array task runs shard $SLURM_ARRAY_TASK_ID of N (`--shard N` reads it; the array must
# be 0-based: --array=0-(N-1)), writing its shard file to $OUT; the merge job runs when every
# task succeeded and writes the report the unsharded run prints, byte for byte.
#SBATCH --job-name=elbsim-shards
#SBATCH --array=0-7
#SBATCH --cpus-per-task=1
#SBATCH --output=elbsim-%A_%a.log
set -eu
N=8
SCENARIO=${SCENARIO:-scenarios/noisy-network.toml}
OUT=${OUT:-elbsim-shards}
mkdir -p "$OUT"
if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
    elbsim trials "$SCENARIO" -n 10000000 --seed 1 -j "${SLURM_CPUS_PER_TASK:-1}" \
        --shard "$N" -o "$OUT/shard-$SLURM_ARRAY_TASK_ID.shard.json"
    # The first task submits the merge, to run after the whole array succeeded.
    if [ "$SLURM_ARRAY_TASK_ID" = 0 ]; then
        sbatch --dependency="afterok:$SLURM_ARRAY_JOB_ID" --job-name=elbsim-merge \
            --output=elbsim-merge-%j.log \
            --wrap="elbsim merge $OUT/*.shard.json -o $OUT/report.txt"
    fi
fi
