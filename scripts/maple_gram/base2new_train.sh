#!/bin/bash
# MaPLe-GRAM base-to-new, train on the base classes (as scripts/maple/base2new_train.sh), prompts from the meta checkpoint
TRAINER=MaPLe_GRAM
GRAM_CFG=${GRAM_CFG:-maple}
source "$(dirname "${BASH_SOURCE[0]}")/../maple/base2new_train.sh"
