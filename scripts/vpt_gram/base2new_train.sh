#!/bin/bash
# VPT-GRAM base-to-new, train on the base classes (as scripts/vpt/base2new_train.sh), prompts from the meta checkpoint
TRAINER=VPT_GRAM
GRAM_CFG=${GRAM_CFG:-vpt}
source "$(dirname "${BASH_SOURCE[0]}")/../vpt/base2new_train.sh"
