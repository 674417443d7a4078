#!/bin/bash
# MaPLe-GRAM base-to-new, test on the new classes (SUB=base for base) (as scripts/maple/base2new_test.sh), prompts from the meta checkpoint
TRAINER=MaPLe_GRAM
GRAM_CFG=${GRAM_CFG:-maple}
source "$(dirname "${BASH_SOURCE[0]}")/../maple/base2new_test.sh"
