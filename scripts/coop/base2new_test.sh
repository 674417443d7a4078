#!/bin/bash
# CoOp base-to-new, test on the new classes (SUB=base for base): bash scripts/coop/base2new_test.sh DATASET SEED
TRAINER=${TRAINER:-CoOp}
CFG=${CFG:-vit_b16_ep50}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
coop_options  # NCTX CSC CTP from the environment (16 False end)
base2new_test "$@"
