#!/bin/bash
# ProMetaR few-shot sweep over SEEDS: bash scripts/prometar/main.sh DATASET SHOTS
TRAINER=${TRAINER:-ProMetaR}
CFG=${CFG:-vit_b16_c2_ep10_batch4_4+4ctx}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
fewshot_sweep "$@"
