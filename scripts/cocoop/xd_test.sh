#!/bin/bash
# CoCoOp cross-dataset / domain generalization, test on DATASET: bash scripts/cocoop/xd_test.sh DATASET SEED
TRAINER=${TRAINER:-CoCoOp}
CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
xd_test "$@"
