#!/bin/bash
# MaPLe few-shot sweep over SEEDS: bash scripts/maple/main.sh DATASET SHOTS
TRAINER=${TRAINER:-MaPLe}
CFG=${CFG:-vit_b16_c2_ep5_batch4_2ctx}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
fewshot_sweep "$@"
