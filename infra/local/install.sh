#!/usr/bin/env bash
# Installs everything the local stack needs under .tools/, skipping what is already there.
# Expensive work lands in the toolchains' own caches outside the clone (Go's module and build
# caches, Maven's ~/.m2, pip's and npm's caches), so a fresh clone on a machine that built the
# tools once sets up quickly. Each step writes a stamp naming what it installed; a changed
# version or toolchain makes that step run again.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/.tools"
logs="$tools/logs"
stamps="$tools/stamps"

temporal_cli_module="github.com/temporalio/cli/cmd/temporal"
# Later releases carry a replace directive in go.mod and cannot be built with `go install module@version`.
temporal_cli_version="v1.5.1"
moto_version="5.2.5"
# Serves moto with connections kept alive (infra/local/moto-server.py).
waitress_version="3.0.2"
test_server_main="io.temporal.testserver.TestServer"
chromium="/usr/bin/chromium"

fail() {
  echo "install: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || fail "missing toolchain: '$1' is not on PATH ($2)"
}

# Runs a step with its output in a log file; on failure prints one line naming the step and the log.
run_logged() {
  local name="$1" hint="$2"
  shift 2
  if ! "$@" >"$logs/$name.log" 2>&1; then
    fail "$hint failed; is the package registry reachable? Last line: $(tail -n 1 "$logs/$name.log") (full log: .tools/logs/$name.log)"
  fi
}

# Prints how long a step took, counted from the SECONDS value it started at.
took() {
  echo "install: $1 ready in $((SECONDS - $2)) s"
}

stamp_matches() {
  [[ -f "$stamps/$1" && "$(cat "$stamps/$1")" == "$2" ]]
}

install_node_modules() {
  local lock="$root/package-lock.json" installed="$root/node_modules/.package-lock.json"
  if [[ -f "$installed" && ! "$lock" -nt "$installed" ]]; then
    return
  fi
  local start=$SECONDS
  echo "install: npm packages (npm ci)"
  run_logged npm-ci "npm ci" npm ci --prefix "$root" --no-audit --no-fund
  took "npm packages" "$start"
}

install_temporal_cli() {
  local want="$temporal_cli_module@$temporal_cli_version $(go env GOVERSION)"
  if [[ -x "$tools/bin/temporal" ]] && stamp_matches temporal-cli "$want"; then
    return
  fi
  local start=$SECONDS
  echo "install: Temporal CLI $temporal_cli_version (go install; the first build takes several minutes)"
  run_logged temporal-cli "go install $temporal_cli_module@$temporal_cli_version" \
    env GOBIN="$tools/bin" go install "$temporal_cli_module@$temporal_cli_version"
  echo "$want" >"$stamps/temporal-cli"
  took "Temporal CLI" "$start"
}

# Starts the test server once with -XX:ArchiveClassesAtExit so later starts map the loaded classes
# from a CDS archive: about 1.3 s to an open port instead of about 3.8 s on this machine, well inside
# the 5 s that the SDK's core waits for the port.
train_class_data_archive() {
  local dir="$1" port
  port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  rm -f "$dir/classes.jsa"
  java -XX:ArchiveClassesAtExit="$dir/classes.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off \
    -cp "$dir/lib/*" "$test_server_main" "$port" --enable-time-skipping >"$logs/test-server-cds.log" 2>&1 &
  local pid=$! waited=0
  until (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    sleep 0.2
    waited=$((waited + 1))
    if ((waited > 150)) || ! kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      fail "the Temporal test server did not open its port while training its class archive (log: .tools/logs/test-server-cds.log)"
    fi
  done
  kill -TERM "$pid"
  wait "$pid" || true
  [[ -s "$dir/classes.jsa" ]] || fail "the JVM wrote no class data archive (log: .tools/logs/test-server-cds.log)"
}

install_test_server() {
  local dir="$tools/test-server" pom="$root/infra/local/test-server/pom.xml" want
  want="$(sha1sum "$pom" | cut -d' ' -f1) $(java -version 2>&1 | head -n 1)"
  if [[ -x "$tools/bin/temporal-test-server" ]] && stamp_matches test-server "$want"; then
    return
  fi
  local start=$SECONDS
  echo "install: Temporal time-skipping test server (Maven Central)"
  rm -rf "$dir"
  mkdir -p "$dir/lib"
  run_logged test-server "mvn dependency:copy-dependencies for io.temporal:temporal-test-server" \
    mvn -B -q -f "$pom" dependency:copy-dependencies -DoutputDirectory="$dir/lib" -DincludeScope=runtime
  train_class_data_archive "$dir"
  cat >"$tools/bin/temporal-test-server" <<EOF
#!/usr/bin/env bash
# Temporal's Java time-skipping test server. Usage: temporal-test-server <port> [--enable-time-skipping]
# Written by infra/local/install.sh. C1-only JIT and the serial GC start faster on two cores.
exec java -XX:SharedArchiveFile="$dir/classes.jsa" -Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off \\
  -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$dir/lib/*" $test_server_main "\$@"
EOF
  chmod +x "$tools/bin/temporal-test-server"
  echo "$want" >"$stamps/test-server"
  took "test server" "$start"
}

# PyPI's answers here are not cacheable, so pip's own cache stays empty; a wheelhouse outside the
# clone plays its part: filled once from PyPI, then installed from with --no-index.
install_moto() {
  local venv="$tools/venv" requirements=("moto[server]==$moto_version" "waitress==$waitress_version")
  local wheelhouse="${XDG_CACHE_HOME:-$HOME/.cache}/rekognition-reindex/wheels"
  local want="${requirements[*]} $(python3 --version 2>&1)"
  if [[ -x "$venv/bin/moto_server" ]] && stamp_matches moto "$want"; then
    return
  fi
  local start=$SECONDS
  echo "install: moto $moto_version and waitress $waitress_version (PyPI, in .tools/venv)"
  rm -rf "$venv"
  mkdir -p "$wheelhouse"
  run_logged moto-venv "python3 -m venv" python3 -m venv "$venv"
  if ! "$venv/bin/pip" install --no-compile --no-index --find-links "$wheelhouse" "${requirements[@]}" >"$logs/moto.log" 2>&1; then
    run_logged moto-download "pip download ${requirements[*]}" "$venv/bin/pip" download --dest "$wheelhouse" "${requirements[@]}"
    run_logged moto "pip install ${requirements[*]}" "$venv/bin/pip" install --no-compile --no-index --find-links "$wheelhouse" "${requirements[@]}"
  fi
  echo "$want" >"$stamps/moto"
  took "moto" "$start"
}

# `reindex report` is tested in a real browser: Debian's Chromium, driven by playwright-core (whose
# own browser download does not work here). apt needs root: directly, or through sudo without a prompt.
install_chromium() {
  if [[ -x "$chromium" ]]; then
    return
  fi
  command -v apt-get >/dev/null 2>&1 || fail "missing: $chromium, and no apt-get to install Debian's chromium package with"
  local as_root=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null ||
      fail "missing: $chromium; installing it needs root: run 'sudo apt-get install -y chromium', then this again"
    as_root=(sudo -n)
  fi
  local start=$SECONDS
  echo "install: Chromium (apt-get install chromium)"
  run_logged apt-update "apt-get update" "${as_root[@]}" apt-get update
  run_logged chromium "apt-get install chromium" "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  [[ -x "$chromium" ]] || fail "apt-get installed chromium, but $chromium is not there (log: .tools/logs/chromium.log)"
  took "Chromium" "$start"
}

main() {
  need node "Node.js 20.3 or newer runs the project"
  need npm "npm installs the project's packages"
  need go "Go builds the Temporal CLI from its module"
  need java "a JDK (17 or newer) runs Temporal's time-skipping test server"
  need mvn "Maven fetches the test server from Maven Central"
  need python3 "Python 3 runs moto (S3, SQS, DynamoDB)"
  python3 -c 'import venv, ensurepip' 2>/dev/null || fail "missing toolchain: python3 has no venv/ensurepip module (install python3-venv)"
  mkdir -p "$tools/bin" "$logs" "$stamps"
  # The steps share nothing, and each waits on its own downloads, linker or JVM: at once they
  # take about as long as the slowest.
  local pids=() failed=0 step
  for step in install_node_modules install_temporal_cli install_test_server install_moto install_chromium; do
    "$step" &
    pids+=($!)
  done
  for step in "${pids[@]}"; do
    wait "$step" || failed=1
  done
  ((failed == 0)) || exit 1
}

main "$@"
