#!/bin/bash
# ProMetaR base-to-new, test on the new classes (SUB=base for base): bash scripts/prometar/base2new_test.sh DATASET SEED
TRAINER=${TRAINER:-ProMetaR}
CFG=${CFG:-vit_b16_c2_ep10_batch4_4+4ctx}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
base2new_test "$@"
