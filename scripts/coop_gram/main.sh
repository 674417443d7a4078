#!/bin/bash
# CoOp-GRAM: as scripts/coop/main.sh, prompts from the meta checkpoint
TRAINER=CoOp_GRAM
GRAM_CFG=${GRAM_CFG:-coop}
source "$(dirname "${BASH_SOURCE[0]}")/../coop/main.sh"
