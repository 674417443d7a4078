#!/bin/bash
# TPT test-time prompt tuning over SEEDS: bash scripts/tpt/tpt.sh DATASET
TRAINER=${TRAINER:-TPT}
CFG=${CFG:-vit_b16}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
test_time_sweep "$@"
