#!/bin/bash
# CoCoOp-GRAM base-to-new, train on the base classes (as scripts/cocoop/base2new_train.sh), prompts from the meta checkpoint
TRAINER=CoCoOp_GRAM
GRAM_CFG=${GRAM_CFG:-cocoop}
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/base2new_train.sh"
