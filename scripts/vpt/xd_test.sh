#!/bin/bash
# VPT cross-dataset / domain generalization, test on DATASET: bash scripts/vpt/xd_test.sh DATASET SEED
TRAINER=${TRAINER:-VPT}
CFG=${CFG:-vit_b16_c2_ep5_batch4_4}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
xd_test "$@"
