#!/bin/bash
# KgCoOp: as scripts/coop/main.sh (same arguments), CoOp's prompts pulled toward the hand-crafted ones
TRAINER=${TRAINER:-KgCoOp}
CFG=${CFG:-vit_b16_ep100_ctxv1}
source "$(dirname "${BASH_SOURCE[0]}")/../coop/main.sh"
