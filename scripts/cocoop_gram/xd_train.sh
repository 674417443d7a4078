#!/bin/bash
# CoCoOp-GRAM cross-dataset / domain generalization, train on ImageNet (as scripts/cocoop/xd_train.sh), prompts from the meta checkpoint
TRAINER=CoCoOp_GRAM
GRAM_CFG=${GRAM_CFG:-cocoop}
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/xd_train.sh"
