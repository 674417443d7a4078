#!/bin/bash
# VPT-GRAM base-to-new, test on the new classes (SUB=base for base) (as scripts/vpt/base2new_test.sh), prompts from the meta checkpoint
TRAINER=VPT_GRAM
GRAM_CFG=${GRAM_CFG:-vpt}
source "$(dirname "${BASH_SOURCE[0]}")/../vpt/base2new_test.sh"
