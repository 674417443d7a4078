#!/bin/bash
# ProMetaR-GRAM: as scripts/prometar/main.sh, prompts from the meta checkpoint
TRAINER=ProMetaR_GRAM
GRAM_CFG=${GRAM_CFG:-prometar}
source "$(dirname "${BASH_SOURCE[0]}")/../prometar/main.sh"
