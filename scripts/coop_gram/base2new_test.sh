#!/bin/bash
# CoOp-GRAM: as scripts/coop/base2new_test.sh, prompts from the meta checkpoint
TRAINER=CoOp_GRAM
GRAM_CFG=${GRAM_CFG:-coop}
source "$(dirname "${BASH_SOURCE[0]}")/../coop/base2new_test.sh"
