#!/usr/bin/env bash
# The scan step of action.yml, usable from any CI that runs a shell.
# Environment: SCOPE (auto|history|files), SARIF (report path), EVENT, BEFORE, AFTER,
# PR_BASE, PR_HEAD (commit ids), FAIL (true|false). Needs a full clone (fetch-depth: 0).
set -uo pipefail
SCOPE=${SCOPE:-auto}
SARIF=${SARIF:-soundpiece-scan.sarif}
zero=0000000000000000000000000000000000000000
args=()
case "$SCOPE" in
  history) args=(--git .) ;;
  files) args=(.) ;;
  auto)
    if [ "${EVENT:-}" = "pull_request" ] || [ "${EVENT:-}" = "pull_request_target" ]; then
      args=(--git . --range "${PR_BASE}..${PR_HEAD}")
    elif [ "${EVENT:-}" = "push" ] && [ -n "${BEFORE:-}" ] && [ "${BEFORE}" != "$zero" ] \
        && git cat-file -e "${BEFORE}^{commit}" 2>/dev/null; then
      args=(--git . --range "${BEFORE}..${AFTER}")
    else
      # A new branch, a force push (BEFORE is gone), a schedule or a manual run: all history.
      args=(--git .)
    fi ;;
  *) echo "soundpiece-scan: unknown scope '$SCOPE'" >&2; exit 2 ;;
esac
soundpiece-scan "${args[@]}" --no-progress --format sarif --output "$SARIF"
code=$?
# The readable summary and annotations on the run's page.
soundpiece-scan "${args[@]}" --no-progress --format github || true
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "exit-code=$code" >> "$GITHUB_OUTPUT"; fi
if [ "$code" -eq 1 ] && [ "${FAIL:-true}" != "true" ]; then exit 0; fi
exit "$code"
