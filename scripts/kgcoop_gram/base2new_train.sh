#!/bin/bash
# KgCoOp-GRAM: as scripts/kgcoop/base2new_train.sh, prompts from the meta checkpoint
TRAINER=KgCoOp_GRAM
GRAM_CFG=${GRAM_CFG:-kgcoop}
source "$(dirname "${BASH_SOURCE[0]}")/../kgcoop/base2new_train.sh"
