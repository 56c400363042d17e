#!/usr/bin/env bash
# The action's entry point: the INPUT_* variables the runner sets become one modelexport call.
# Inputs with a hyphen (INPUT_GITHUB-TOKEN) are no shell variables, hence printenv.
set -euo pipefail

input() { printenv "INPUT_$1" || true; }

mode="$(input MODE)"
manifest="$(input MANIFEST)"
baseline="$(input BASELINE)"
out="$(input OUTPUT-DIR)"
out="${out:-modelexport-out}"
results="$out/results.json"

comment="$(input COMMENT)"
if [[ "$comment" == "auto" || -z "$comment" ]]; then
  case "${GITHUB_EVENT_NAME:-}" in
    pull_request | pull_request_target) comment=true ;;
    *) comment=false ;;
  esac
fi

# Tokens travel in the environment only: never on a command line, never echoed.
token="$(input GITHUB-TOKEN)"
export GITHUB_TOKEN="${token:-${GITHUB_TOKEN:-}}"
unset token
hf_token="$(input HF-TOKEN)"
if [[ -n "$hf_token" ]]; then
  export HF_TOKEN="$hf_token"
fi
unset hf_token
# git refuses a checkout owned by another user (the runner's, not this container's root)
# unless told it is safe: the base of a pull request is read from it. Said for this
# process's git calls only, not written to any configuration file.
if [[ -n "${GITHUB_WORKSPACE:-}" ]]; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0="$GITHUB_WORKSPACE"
fi
# The hub cache lives in the workspace so that actions/cache can keep it between runs.
export HF_HOME="${HF_HOME:-${GITHUB_WORKSPACE:-$PWD}/.cache/huggingface}"

mkdir -p "$out"
case "$mode" in
  check | collect | update-baseline)
    args=(check --baseline "$baseline" --results "$results" --report-dir "$out")
    [[ -n "$(input THRESHOLD)" ]] && args+=(--threshold "$(input THRESHOLD)")
    [[ -n "$(input REPEATS)" ]] && args+=(--repeats "$(input REPEATS)")
    [[ -n "$(input SHARD)" ]] && args+=(--shard "$(input SHARD)")
    IFS=', ' read -r -a tags <<<"$(input SELECT)"
    for tag in "${tags[@]}"; do
      args+=(--select "$tag")
    done
    [[ "$(input KEEP-EXPORTS)" == "true" ]] && args+=(--keep "$out/exports")
    [[ "$mode" == "update-baseline" ]] && args+=(--update-baseline)
    [[ "$mode" != "update-baseline" && -n "$(input COMPARE-WITH)" ]] &&
      args+=(--compare-with "$(input COMPARE-WITH)")
    [[ "$mode" == "check" && "$comment" == "true" ]] && args+=(--comment)
    args+=(-- "$manifest")  # a manifest named like an option is still a file name
    ;;
  report)
    # The report is rendered from the results, judged against this job's own baseline and
    # manifest (the default branch's): nothing of the pull request's artifact is posted.
    args=(comment --results "$results")
    [[ -n "$baseline" ]] && args+=(--baseline "$baseline")
    [[ -n "$manifest" ]] && args+=(--manifest "$manifest")
    ;;
  *)
    # The value is the workflow's, not ours: never echoed, so it cannot be a command.
    echo "::error title=modelexport::mode must be check, update-baseline, collect or report"
    exit 2
    ;;
esac

# bash is PID 1 here and would not pass the runner's SIGTERM on: forward it, so that the
# gate saves the models it finished (exit 130) before the container stops.
status=0
modelexport "${args[@]}" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child" || status=$?
if [[ "$status" -gt 128 ]] && kill -0 "$child" 2>/dev/null; then
  wait "$child" || status=$?  # the signal interrupted wait, not the gate: let it finish
fi
# The workspace belongs to the runner's user, not to this container's root: hand our
# files back so later steps (upload-artifact, git commit of a baseline) can use them.
# Only paths inside the workspace: a path input may name any file of the container.
if [[ -n "${GITHUB_WORKSPACE:-}" ]]; then
  owner="$(stat -c '%u:%g' "$GITHUB_WORKSPACE")"
  workspace="$(realpath "$GITHUB_WORKSPACE")"
  # .git/worktrees: where git noted the base's checkout (compare-with), as root.
  for path in "$out" "$baseline" "$HF_HOME" .git/worktrees; do
    [[ -n "$path" ]] || continue
    resolved="$(realpath -m -- "$path")"
    if [[ "$resolved" == "$workspace"/* && -e "$resolved" ]]; then
      chown -R "$owner" -- "$resolved" 2>/dev/null || true
    fi
  done
fi
if [[ "$status" == 1 && "$(input FAIL-ON-REGRESSION)" == "false" ]]; then
  echo "::warning title=modelexport::regressions found; not failing (fail-on-regression: false)"
  exit 0
fi
exit "$status"
