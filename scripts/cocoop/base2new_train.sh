#!/bin/bash
# CoCoOp base-to-new, train on the base classes: bash scripts/cocoop/base2new_train.sh DATASET SEED
TRAINER=${TRAINER:-CoCoOp}
CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
base2new_train "$@"
