#!/bin/bash
# VPT-GRAM cross-dataset / domain generalization, train on ImageNet (as scripts/vpt/xd_train.sh), prompts from the meta checkpoint
TRAINER=VPT_GRAM
GRAM_CFG=${GRAM_CFG:-vpt}
source "$(dirname "${BASH_SOURCE[0]}")/../vpt/xd_train.sh"
