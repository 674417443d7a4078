#!/bin/bash
# GRAM meta-training (after scripts/gram/cluster.sh): bash scripts/gram/meta_train.sh CFG SPLIT_FILE [OUT]
# Writes OUT/meta_checkpoint.pth (OUT defaults to ${OUTPUT}/gram/CFG, where the GRAM scripts look for it).
# OPTS ("KEY VALUE ...") are passed on, as by every script: e.g. MODEL.BACKBONE.NAME of a tiny CLIP checkpoint.
# SEED (default 1) seeds meta-training, as it seeds cluster.sh.
TRAINER=GRAM
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
need_args 2 "CFG SPLIT_FILE [OUT]" "$@"
CFG=$1
SPLIT=$2
OUT=${3:-$(run_folder meta cfg="${CFG}")}
# shellcheck disable=SC2086  # PYTHON may hold an interpreter and its options; OPTS are KEY VALUE
stage_job "${OUT}" "${META_CKPT_NAME}" ${PYTHON} meta_train.py \
    --root "${DATA}" \
    --config-file "configs/gram/${CFG}.yaml" \
    --split-file "${SPLIT}" \
    --output-dir "${OUT}" \
    --seed "${SEED:-1}" \
    ${OPTS:-}
