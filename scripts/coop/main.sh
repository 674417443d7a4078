#!/bin/bash
# CoOp few-shot sweep over SEEDS: bash scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC
TRAINER=${TRAINER:-CoOp}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
need_args 6 "DATASET CFG CTP NCTX SHOTS CSC" "$@"
CFG=$2  # config file
SHOTS=$5  # number of shots (1, 2, 4, 8, 16)
coop_options "$4" "$6" "$3"  # context tokens, class-specific context, class token position
fewshot_sweep "$1"
