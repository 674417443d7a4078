#!/bin/bash
# MaPLe-GRAM cross-dataset / domain generalization, test on DATASET (as scripts/maple/xd_test.sh), prompts from the meta checkpoint
TRAINER=MaPLe_GRAM
GRAM_CFG=${GRAM_CFG:-maple_cross_datasets}
source "$(dirname "${BASH_SOURCE[0]}")/../maple/xd_test.sh"
