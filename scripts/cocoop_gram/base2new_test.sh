#!/bin/bash
# CoCoOp-GRAM base-to-new, test on the new classes (SUB=base for base) (as scripts/cocoop/base2new_test.sh), prompts from the meta checkpoint
TRAINER=CoCoOp_GRAM
GRAM_CFG=${GRAM_CFG:-cocoop}
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/base2new_test.sh"
