#!/bin/bash
# GRAM test-time tuning (as scripts/tpt/tpt.sh), gradient regulated by the meta checkpoint
TRAINER=TPT_GRAM
GRAM_CFG=${GRAM_CFG:-tpt}
source "$(dirname "${BASH_SOURCE[0]}")/tpt.sh"
