#!/bin/bash
# CoCoOp base-to-new, test on the new classes (SUB=base for base): bash scripts/cocoop/base2new_test.sh DATASET SEED
TRAINER=${TRAINER:-CoCoOp}
CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
base2new_test "$@"
