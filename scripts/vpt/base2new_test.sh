#!/bin/bash
# VPT base-to-new, test on the new classes (SUB=base for base): bash scripts/vpt/base2new_test.sh DATASET SEED
TRAINER=${TRAINER:-VPT}
CFG=${CFG:-vit_b16_c2_ep5_batch4_4}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
base2new_test "$@"
