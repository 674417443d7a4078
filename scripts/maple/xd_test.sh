#!/bin/bash
# MaPLe cross-dataset / domain generalization, test on DATASET: bash scripts/maple/xd_test.sh DATASET SEED
TRAINER=${TRAINER:-MaPLe}
CFG=${CFG:-vit_b16_c2_ep5_batch4_2ctx_cross_datasets}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
xd_test "$@"
