#!/bin/bash
# GRAM clustering stage (before meta_train.sh): bash scripts/gram/cluster.sh CORPUS BACKBONE [METHOD] [OUT]
#   CORPUS    corpus manifest (.tsv/.csv/.jsonl) or folder of .tar shards; a relative path is read under ${DATA}
#   BACKBONE  OpenAI CLIP name (ViT-B/16) or checkpoint path
#   METHOD    cmhc (default; hierarchy of LEVELS over K k-means leaves) or kmeans (K flat domains)
#   OUT       default ${OUTPUT}/gram/split/METHOD_kK; holds split.json, its arrays and the feature cache
# Environment: LEVELS (default 4,16,64), K (default 256), SEED (default 1), CLUSTER_OPTS (more cluster.py
# flags, e.g. "--gpu --batch-size 512"). A folder that already holds split.json is skipped.
TRAINER=GRAM
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
need_args 2 "CORPUS BACKBONE [METHOD] [OUT]" "$@"
CORPUS=$1
[[ "${CORPUS}" = /* ]] || CORPUS=${DATA}/${CORPUS}
BACKBONE=$2
METHOD=${3:-cmhc}
K=${K:-256}
LEVELS=${LEVELS:-4,16,64}
SEED=${SEED:-1}
OUT=${4:-${OUTPUT}/gram/split/${METHOD}_k${K}}
LEVEL_OPTS=()
[ "${METHOD}" = cmhc ] && LEVEL_OPTS=(--levels "${LEVELS}")
# shellcheck disable=SC2086  # PYTHON may hold an interpreter and its options; CLUSTER_OPTS are flags
stage_job "${OUT}" split.json ${PYTHON} cluster.py \
    --corpus "${CORPUS}" \
    --backbone "${BACKBONE}" \
    --output-dir "${OUT}" \
    --method "${METHOD}" \
    --k "${K}" \
    --seed "${SEED}" \
    "${LEVEL_OPTS[@]}" \
    ${CLUSTER_OPTS}
