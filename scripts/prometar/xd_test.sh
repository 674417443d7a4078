#!/bin/bash
# ProMetaR cross-dataset / domain generalization, test on DATASET: bash scripts/prometar/xd_test.sh DATASET SEED
TRAINER=${TRAINER:-ProMetaR}
CFG=${CFG:-vit_b16_c2_ep10_batch4_4+4ctx}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
xd_test "$@"
