#!/bin/bash
# CoCoOp few-shot sweep over SEEDS: bash scripts/cocoop/main.sh DATASET SHOTS
TRAINER=${TRAINER:-CoCoOp}
CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
fewshot_sweep "$@"
