#!/bin/bash
# VPT few-shot sweep over SEEDS: bash scripts/vpt/main.sh DATASET SHOTS
TRAINER=${TRAINER:-VPT}
CFG=${CFG:-vit_b16_c2_ep5_batch4_4}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
fewshot_sweep "$@"
