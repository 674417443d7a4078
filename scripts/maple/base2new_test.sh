#!/bin/bash
# MaPLe base-to-new, test on the new classes (SUB=base for base): bash scripts/maple/base2new_test.sh DATASET SEED
TRAINER=${TRAINER:-MaPLe}
CFG=${CFG:-vit_b16_c2_ep5_batch4_2ctx}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
base2new_test "$@"
