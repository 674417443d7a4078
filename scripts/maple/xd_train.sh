#!/bin/bash
# MaPLe cross-dataset / domain generalization, train on ImageNet: bash scripts/maple/xd_train.sh SEED
TRAINER=${TRAINER:-MaPLe}
CFG=${CFG:-vit_b16_c2_ep5_batch4_2ctx_cross_datasets}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
xd_train "$@"
