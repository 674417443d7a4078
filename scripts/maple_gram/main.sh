#!/bin/bash
# MaPLe-GRAM few-shot sweep over SEEDS (as scripts/maple/main.sh), prompts from the meta checkpoint
TRAINER=MaPLe_GRAM
GRAM_CFG=${GRAM_CFG:-maple}
source "$(dirname "${BASH_SOURCE[0]}")/../maple/main.sh"
