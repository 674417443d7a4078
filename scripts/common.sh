# Shared settings and job functions of every sweep script (sourced, never run on its own).
#
# Set once, for all scripts, in the environment:
#   DATA     datasets root (CoOp's layout)          default /path/to/datasets
#   PYTHON   interpreter that runs train.py        default python
#   OUTPUT   output root                           default output (relative to the repository root)
#   SEEDS    seeds of the scripts that loop        default "1 2 3"
#   SHOTS    shots per class (scripts without a SHOTS argument)   default 16
#   SOURCE   training dataset of cross-dataset / DG (xd_train, xd_test)   default imagenet
#   LOADEP   epoch a test run loads                default OPTIM.MAX_EPOCH (from OPTS, else the trainer config)
#   META_CKPT  GRAM meta checkpoint                default ${OUTPUT}/gram/<GRAM_CFG>/meta_checkpoint.pth
#   OPTS     extra "KEY VALUE ..." config options for every run (e.g. MODEL.BACKBONE.NAME /path/tiny_clip.pt)
#   TOOLS_PYTHON  interpreter of the toolbox's tools   default the first word of PYTHON
# A script sets TRAINER (and its defaults) and then sources this file. Scripts run from the repository
# root whatever the current folder. A run whose folder already holds a result (results.json, or a final
# "* accuracy:" line in its log) is skipped; an unfinished one is run again and resumes from its checkpoint.
# The folder scheme, that rule and the meta-checkpoint file name come from tools/protocols.py (which
# run_protocol.py uses too), so the two cannot drift apart.

DATA=${DATA:-/path/to/datasets}
PYTHON=${PYTHON:-python}
OUTPUT=${OUTPUT:-output}
SEEDS=${SEEDS:-1 2 3}
SHOTS=${SHOTS:-16}
SOURCE=${SOURCE:-imagenet}
TOOLS_PYTHON=${TOOLS_PYTHON:-${PYTHON%% *}}
CFG_DIRS=${CFG_DIRS:-"${TRAINER} ${TRAINER%_GRAM}"}
TRAINER_OPTS=()
VARIANT=""

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

[ -d "${DATA}" ] || die "DATA=${DATA} is not a directory: export DATA=/path/to/datasets"

# FOLDERS (run-folder templates by scheme) and META_CKPT_NAME, as tools/protocols.py defines them.
# shellcheck disable=SC2086  # TOOLS_PYTHON may hold an interpreter and its options
DEFINITIONS=$(${TOOLS_PYTHON} -m tools.protocols shell) \
    || die "cannot run ${TOOLS_PYTHON} -m tools.protocols: export TOOLS_PYTHON=<the toolbox's python>"
eval "${DEFINITIONS}"

# run_is_done DIR: the folder holds a result (tools.results.is_run_done).
run_is_done() {
    # shellcheck disable=SC2086
    ${TOOLS_PYTHON} -m tools.protocols done "$1"
}

# run_folder SCHEME FIELD=VALUE...: ${OUTPUT}/ the run folder of SCHEME (FOLDERS) with the fields filled in.
run_folder() {
    local folder=${FOLDERS[$1]} pair
    shift
    for pair in "$@"; do
        folder=${folder//"{${pair%%=*}}"/"${pair#*=}"}
    done
    echo "${OUTPUT}/${folder}"
}

# stage_job OUT FILE COMMAND...: run COMMAND (a GRAM stage writing into OUT) unless OUT/FILE exists.
stage_job() {
    local out=$1 file=$2
    shift 2
    if [ -f "${out}/${file}" ]; then
        echo "Results are available in ${out}. Skip this job"
        return 0
    fi
    echo "Run this job and save the output to ${out}"
    "$@"
}

# trainer_config CFG: the config file in the first of CFG_DIRS that has it.
trainer_config() {
    local dir
    for dir in ${CFG_DIRS}; do
        if [ -f "configs/trainers/${dir}/$1.yaml" ]; then
            echo "configs/trainers/${dir}/$1.yaml"
            return
        fi
    done
    echo "configs/trainers/${CFG_DIRS%% *}/$1.yaml"
}

# load_epoch CFG: LOADEP, else OPTIM.MAX_EPOCH from OPTS, else from the config (the last checkpoint).
load_epoch() {
    local epoch=${LOADEP:-} key previous=""
    if [ -z "${epoch}" ]; then
        for key in ${OPTS:-}; do
            [ "${previous}" = OPTIM.MAX_EPOCH ] && epoch=${key}
            previous=${key}
        done
    fi
    epoch=${epoch:-$(awk '/^[[:space:]]*MAX_EPOCH:/ {print $2; exit}' "$(trainer_config "$1")" 2>/dev/null)}
    [ -n "${epoch}" ] || die "no OPTIM.MAX_EPOCH in $(trainer_config "$1"): export LOADEP"
    echo "${epoch}"
}

# config_value KEY DEFAULT: KEY's value in the trainer config CFG (its first KEY: line), else DEFAULT.
config_value() {
    local value
    value=$(awk -v key="$1:" '$1 == key {gsub(/"/, "", $2); print $2; exit}' "$(trainer_config "${CFG}")" 2>/dev/null)
    echo "${value:-$2}"
}

# coop_options NCTX CSC CTP: CoOp's context options and their folder level (arguments, else env NCTX CSC
# CTP, else the trainer config's N_CTX CSC CLASS_TOKEN_POSITION, else 16 False end).
coop_options() {
    local nctx=${1:-${NCTX:-$(config_value N_CTX 16)}} csc=${2:-${CSC:-$(config_value CSC False)}}
    local ctp=${3:-${CTP:-$(config_value CLASS_TOKEN_POSITION end)}}
    VARIANT=nctx${nctx}_csc${csc}_ctp${ctp}
    TRAINER_OPTS=(TRAINER.COOP.N_CTX "${nctx}" TRAINER.COOP.CSC "${csc}" TRAINER.COOP.CLASS_TOKEN_POSITION "${ctp}")
}

# gram_options: the meta checkpoint of a *_GRAM trainer (which must exist).
gram_options() {
    [[ ${TRAINER} == *_GRAM ]] || return 0
    META_CKPT=${META_CKPT:-$(run_folder meta cfg="${GRAM_CFG}")/${META_CKPT_NAME}}
    [ -f "${META_CKPT}" ] || die "meta checkpoint ${META_CKPT} not found: run scripts/gram/meta_train.sh ${GRAM_CFG} SPLIT_FILE first, or export META_CKPT"
    echo TRAINER.GRAM.META_CKPT "${META_CKPT}"
}

# train_job DIR DATASET CFG SEED [ARGS...]: run train.py into DIR (SEED may be empty) unless done.
train_job() {
    local dir=$1 dataset=$2 cfg=$3 seed=$4
    shift 4
    if run_is_done "${dir}"; then
        echo "Results are available in ${dir}. Skip this job"
        return 0
    fi
    local gram
    gram=$(gram_options) || exit 1
    echo "Run this job and save the output to ${dir}"
    # shellcheck disable=SC2086  # PYTHON may hold an interpreter and its options; OPTS and gram are KEY VALUE
    ${PYTHON} train.py \
        --root "${DATA}" \
        ${seed:+--seed "${seed}"} \
        --trainer "${TRAINER}" \
        --dataset-config-file "configs/datasets/${dataset}.yaml" \
        --config-file "$(trainer_config "${cfg}")" \
        --output-dir "${dir}" \
        "$@" ${OPTS:-} ${gram}
}

variant_level() {
    echo "${VARIANT:+/${VARIANT}}"
}

fewshot_dir() {  # DATASET SEED
    run_folder fewshot dataset="$1" trainer="${TRAINER}" cfg="${CFG}" shots="${SHOTS}" variant="$(variant_level)" \
        seed="$2"
}

# fewshot_run DATASET SEED: train on SHOTS shots of all classes, then test (CoOp main.sh, xd_train.sh).
fewshot_run() {
    train_job "$(fewshot_dir "$1" "$2")" "$1" "${CFG}" "$2" "${TRAINER_OPTS[@]}" DATASET.NUM_SHOTS "${SHOTS}"
}

# each_seed COMMAND [ARGS...]: COMMAND ARGS... SEED for every seed in SEEDS; goes on after a failed seed
# and fails at the end if any did.
each_seed() {
    local seed status=0
    for seed in ${SEEDS}; do
        "$@" "${seed}" || status=1
    done
    return "${status}"
}

# fewshot_sweep DATASET [SHOTS]: fewshot_run for every seed in SEEDS (missing seeds only).
fewshot_sweep() {
    need_args 1 "DATASET SHOTS" "$@"
    SHOTS=${2:-${SHOTS}}
    each_seed fewshot_run "$1"
}

base2new_dir() {  # STAGE DATASET SEED
    run_folder base2new stage="$1" dataset="$2" shots="${SHOTS}" trainer="${TRAINER}" cfg="${CFG}" seed="$3"
}

# base2new_train DATASET SEED: train on the base half of the classes (CoCoOp base2new_train.sh).
base2new_train() {
    need_args 2 "DATASET SEED" "$@"
    train_job "$(base2new_dir train_base "$1" "$2")" "$1" "${CFG}" "$2" \
        "${TRAINER_OPTS[@]}" DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES base
}

# base2new_test DATASET SEED: test the base-trained prompts on SUB (default new) classes.
base2new_test() {
    need_args 2 "DATASET SEED" "$@"
    local sub=${SUB:-new} epoch
    epoch=$(load_epoch "${CFG}") || exit 1
    train_job "$(base2new_dir "test_${sub}" "$1" "$2")" "$1" "${CFG}" "$2" \
        --model-dir "$(base2new_dir train_base "$1" "$2")" --load-epoch "${epoch}" --eval-only \
        "${TRAINER_OPTS[@]}" DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES "${sub}"
}

# xd_test DATASET SEED: test the SOURCE-trained prompts on DATASET (CoCoOp xd_test.sh, CoOp eval.sh).
xd_test() {
    need_args 2 "DATASET SEED" "$@"
    local epoch
    epoch=$(load_epoch "${CFG}") || exit 1
    train_job "$(run_folder evaluation trainer="${TRAINER}" cfg="${CFG}" shots="${SHOTS}" variant="$(variant_level)" \
        dataset="$1" seed="$2")" "$1" "${CFG}" "$2" \
        --model-dir "$(fewshot_dir "${SOURCE}" "$2")" --load-epoch "${epoch}" --eval-only \
        "${TRAINER_OPTS[@]}"
}

# xd_train SEED: train on SOURCE (ImageNet, all classes) for the transfer protocols (CoCoOp xd_train.sh).
xd_train() {
    need_args 1 "SEED" "$@"
    fewshot_run "${SOURCE}" "$1"
}

# zeroshot DATASET: evaluate without training (CoOp zeroshot.sh; no seed).
zeroshot() {
    need_args 1 "DATASET [CFG]" "$@"
    train_job "$(run_folder zeroshot trainer="${TRAINER}" cfg="${CFG}" dataset="$1")" "$1" "${CFG}" "" --eval-only
}

# test_time_run DATASET SEED: test-time prompt tuning on DATASET (scripts/tpt/tpt.sh).
test_time_run() {
    train_job "$(run_folder tta trainer="${TRAINER}" cfg="${CFG}" dataset="$1" seed="$2")" "$1" "${CFG}" "$2" --eval-only
}

# test_time_sweep DATASET: test_time_run for every seed in SEEDS.
test_time_sweep() {
    need_args 1 "DATASET" "$@"
    each_seed test_time_run "$1"
}

# need_args COUNT USAGE ARGS...: stop with the usage line unless ARGS has COUNT values.
need_args() {
    local count=$1 usage=$2
    shift 2
    [ $# -ge "${count}" ] || die "usage: bash ${BASH_SOURCE[-1]#"${PWD}"/} ${usage}"
}
