#!/bin/bash
# VPT-GRAM cross-dataset / domain generalization, test on DATASET (as scripts/vpt/xd_test.sh), prompts from the meta checkpoint
TRAINER=VPT_GRAM
GRAM_CFG=${GRAM_CFG:-vpt}
source "$(dirname "${BASH_SOURCE[0]}")/../vpt/xd_test.sh"
