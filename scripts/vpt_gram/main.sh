#!/bin/bash
# VPT-GRAM few-shot sweep over SEEDS (as scripts/vpt/main.sh), prompts from the meta checkpoint
TRAINER=VPT_GRAM
GRAM_CFG=${GRAM_CFG:-vpt}
source "$(dirname "${BASH_SOURCE[0]}")/../vpt/main.sh"
