#!/bin/bash
# Zero-shot CLIP (hand-written prompts, no training): bash scripts/zsclip/zeroshot.sh DATASET [CFG]
TRAINER=ZeroshotCLIP
CFG_DIRS="ZeroshotCLIP CoOp"
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
CFG=${2:-vit_b16}  # rn50, rn101, vit_b32 or vit_b16
zeroshot "$@"
