#!/bin/bash
# ProMetaR-GRAM: as scripts/prometar/base2new_test.sh, prompts from the meta checkpoint
TRAINER=ProMetaR_GRAM
GRAM_CFG=${GRAM_CFG:-prometar}
source "$(dirname "${BASH_SOURCE[0]}")/../prometar/base2new_test.sh"
