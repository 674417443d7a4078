#!/bin/bash
# KgCoOp-GRAM: as scripts/kgcoop/main.sh, prompts from the meta checkpoint
TRAINER=KgCoOp_GRAM
GRAM_CFG=${GRAM_CFG:-kgcoop}
source "$(dirname "${BASH_SOURCE[0]}")/../kgcoop/main.sh"
