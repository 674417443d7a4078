#!/bin/bash
# CoOp cross-dataset test over SEEDS of the ImageNet-trained prompts: bash scripts/coop/eval.sh DATASET CFG
TRAINER=${TRAINER:-CoOp}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
need_args 2 "DATASET CFG" "$@"
CFG=$2
coop_options  # NCTX CSC CTP from the environment (16 False end)
each_seed xd_test "$1"
