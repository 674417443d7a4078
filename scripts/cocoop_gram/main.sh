#!/bin/bash
# CoCoOp-GRAM few-shot sweep over SEEDS (as scripts/cocoop/main.sh), prompts from the meta checkpoint
TRAINER=CoCoOp_GRAM
GRAM_CFG=${GRAM_CFG:-cocoop}
source "$(dirname "${BASH_SOURCE[0]}")/../cocoop/main.sh"
