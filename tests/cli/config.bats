#!/usr/bin/env bats
# plan config: validation against a plan's schema, versions and history,
# rollback, secrets, --json, which store path gives the schema, and what a
# run receives (through tests/tools/runconfig, which calls
# plan_config_materialise as 'plan run' does).

load helpers

setup() {
    common_setup
    unset PLAN_PROFILE PLAN_CONFIG PLAN_ROOT
    R="$BATS_TEST_TMPDIR/recipes"
    export PLAN_RUN_DIR="$BATS_TEST_TMPDIR/run"
    mkdir -p "$R" "$PLAN_RUN_DIR"
    SECRET="tok-$RANDOM-$RANDOM-never-shown"
}

runconfig() { "$PLAN_TOOLS/runconfig" "$ROOT" "$@"; }

# svc_recipe VERSION PORT-TYPE: the plan 'svc', whose 'port' has PORT-TYPE.
svc_recipe() {
    plan_recipe "$R" svc "$1" 'mkdir -p $out/share
echo svc >$out/share/svc' "config:
  port:
    type: $2
    default: \"8080\"
    env: SVC_PORT
    description: where to listen
  mode:
    type: string
    allowed: [fast, safe]
    default: safe
  verbose:
    type: bool
    default: \"false\"
  motd:
    type: string
    default: hello
    file: etc/motd.txt
  token:
    type: string
    secret: true
    env: SVC_TOKEN
  data:
    type: path
    description: where the data lives (required)"
}

build_svc() {
    svc_recipe "${1:-1.0.0}" "${2:-int}"
    plan build "$R/svc-${1:-1.0.0}.yaml" 2>/dev/null
}

@test "set checks the key, the type and the allowed values, naming what was expected" {
    build_svc >/dev/null
    run plan config set svc port eighty
    [ "$status" -eq 1 ]
    [[ "$output" == *"config key 'port' of 'svc': expected an integer for type int, found 'eighty'"* ]]
    run plan config set svc verbose yes
    [ "$status" -eq 1 ]
    [[ "$output" == *"config key 'verbose' of 'svc': expected true or false for type bool, found 'yes'"* ]]
    run plan config set svc mode quick
    [ "$status" -eq 1 ]
    [[ "$output" == *"config key 'mode' of 'svc': expected one of 'fast', 'safe', found 'quick'"* ]]
    run plan config set svc prot 1
    [ "$status" -eq 1 ]
    [[ "$output" == *"'svc' has no config key 'prot'; did you mean 'port'?"* ]]
    run plan config set svc colour red
    [ "$status" -eq 1 ]
    [[ "$output" == *"its keys: data, mode, motd, port, token, verbose"* ]]
    # generated wrong integers: none is accepted, nothing is recorded
    for v in 1.5 0x10 "" " 1" 1e3 99999999999999999999 -- +; do
        run plan config set svc port -- "$v"
        [ "$status" -eq 1 ] || { echo "accepted '$v'"; false; }
    done
    run plan config history svc
    [ "$status" -eq 0 ]
    [ -z "$output" ] || [[ "$output" == *"never been changed"* ]]
    run plan config set svc port -- -1
    [ "$status" -eq 0 ]
}

@test "every change is a version with its old and new value; get and list show what is in effect" {
    build_svc >/dev/null
    run plan config set svc port 9000
    [ "$status" -eq 0 ]
    [ "$output" = "svc: port = '9000' (version 1)" ]
    plan config set svc port 9001 >/dev/null
    plan config set svc mode fast >/dev/null
    plan config unset svc mode >/dev/null
    run plan config get svc port
    [ "$output" = 9001 ]
    run plan config get svc mode
    [ "$output" = safe ] # the default again
    run plan config list svc
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "data "*"-"*"unset: required" ]]
    [[ "${lines[1]}" == "mode "*"safe"*"default" ]]
    [[ "${lines[3]}" == "port "*"9001"*"set (version 2)" ]]
    [[ "${lines[4]}" == "token "*"(secret)"*"unset: required" ]]
    run plan config history svc
    [ "${lines[1]}" = "      port: (none) -> '9000'" ]
    [ "${lines[3]}" = "      port: '9000' -> '9001'" ]
    [[ "${lines[6]}" == *"  unset" ]]
    [ "${lines[7]}" = "      mode: 'fast' -> (none)" ]
    run plan --json config history svc
    [ "$(jq -r '.versions | length' <<<"$output")" = 4 ]
    [ "$(jq -r '.versions[1].changes[0] | "\(.old) \(.new)"' <<<"$output")" = "9000 9001" ]
    [ "$(jq -r '.versions[3].action' <<<"$output")" = unset ]
    run plan --json config list svc
    [ "$(jq -r '.version' <<<"$output")" = 4 ]
    [ "$(jq -r '.keys[] | select(.key == "port") | "\(.value) \(.source) \(.version) \(.type)"' <<<"$output")" = "9001 set 2 int" ]
    [ "$(jq -r '.keys[] | select(.key == "data") | .source' <<<"$output")" = unset ]
    [ "$(jq -r '.keys[] | select(.key == "mode") | .allowed | join(",")' <<<"$output")" = "fast,safe" ]
    run plan --json config get svc mode
    [ "$(jq -r '"\(.value) \(.source)"' <<<"$output")" = "safe default" ]
    # a required key with no value, and an unset of nothing
    run plan config get svc data
    [ "$status" -eq 1 ]
    [[ "$output" == *"has no value and no default; set it with 'plan config set svc data VALUE'"* ]]
    run plan config get svc token # a secret with no value is no different
    [ "$status" -eq 1 ]
    run plan config unset svc mode
    [ "$status" -eq 1 ]
    [[ "$output" == *"'svc' key 'mode' has no value to unset"* ]]
}

@test "rollback makes an old version current again, as a new version" {
    build_svc >/dev/null
    plan config set svc port 1 >/dev/null
    plan config set svc mode fast >/dev/null
    plan config set svc port 3 >/dev/null
    run plan config rollback svc 1
    [ "$status" -eq 0 ]
    [ "$output" = "svc: version 4 returns to version 1 (2 keys changed)" ]
    [ "$(plan config get svc port)" = 1 ]
    [ "$(plan config get svc mode)" = safe ]
    run plan config history svc
    [[ "${lines[6]}" == *"  rollback to version 1" ]]
    # and back again: nothing was lost
    plan config rollback svc 3 >/dev/null
    [ "$(plan config get svc port)" = 3 ]
    [ "$(plan config get svc mode)" = fast ]
    plan config rollback svc 0 >/dev/null
    [ "$(plan config get svc port)" = 8080 ]
    run plan config rollback svc 9
    [ "$status" -eq 1 ]
    [[ "$output" == *"has no version 9: its versions go from 1 to 6"* ]]
    run plan config rollback svc two
    [ "$status" -eq 2 ]
    run plan --json config rollback svc 2
    [ "$(jq -r '"\(.version) \(.target)"' <<<"$output")" = "7 2" ]
}

@test "secrets are never printed, stay out of plan.db, and live in a 0600 file" {
    build_svc >/dev/null
    run plan config set svc token "$SECRET"
    [ "$status" -eq 0 ]
    [ "$output" = "svc: token set, a secret (version 1)" ] # the schema marks it secret
    run plan config set svc motd "$SECRET-motd" --secret
    [ "$output" = "svc: motd set, a secret (version 2)" ]
    plan config set svc motd "$SECRET-again" >/dev/null # stays secret
    run plan config set svc mode "$SECRET" --secret # an invalid secret is not echoed
    [ "$status" -eq 1 ]
    [[ "$output" == *"expected one of 'fast', 'safe' (the value given, a secret, is not shown)"* ]]
    for args in "get svc token" "get svc motd" "list svc" "history svc" "--json get svc token" \
        "--json list svc" "--json history svc"; do
        run plan config $args
        [ "$status" -eq 0 ]
        [[ "$output" != *"$SECRET"* ]] || { echo "'plan $args' printed the secret"; false; }
    done
    run plan config get svc token
    [[ "$output" == *"is a secret: its value is never printed"* ]]
    [ -z "$(plan config get svc token 2>/dev/null)" ]
    run plan config history svc
    [ "${lines[5]}" = "      motd: (secret) -> (secret)" ]
    ! grep -a -q -- "$SECRET" "$ROOT"/var/db/plan.db*
    [ "$(stat -c %a "$ROOT/var/secrets/config.db")" = 600 ]
    [ "$(stat -c %a "$ROOT/var/secrets")" = 700 ]
    grep -a -q -- "$SECRET" "$ROOT/var/secrets/config.db" # where it does live
    # a secrets file that others can read is refused, not used
    chmod 644 "$ROOT/var/secrets/config.db"
    run plan config set svc token x
    [ "$status" -eq 1 ]
    [[ "$output" == *"is readable by others"* ]]
}

@test "a run receives every key: variables, config.json, declared files, secret files" {
    p=$(build_svc)
    plan config set svc port 9000 >/dev/null
    plan config set svc token "$SECRET" >/dev/null
    run runconfig svc "$p" "$BATS_TEST_TMPDIR/cfg"
    [ "$status" -eq 1 ] # data is required
    [[ "$output" == *"config key 'data' of 'svc' has no value and no default: set it with 'plan config set svc data VALUE'"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/cfg" ] # nothing half-written
    plan config set svc data /srv/svc >/dev/null
    run runconfig svc "$p" "$BATS_TEST_TMPDIR/cfg"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "version 3" ]
    [ "${lines[1]}" = "overridden no" ]
    [[ "$output" == *$'\nSVC_PORT=9000\n'* ]]
    [[ "$output" == *$'\nPLAN_CONFIG_PORT=9000\n'* ]]
    [[ "$output" == *$'\nPLAN_CONFIG_MODE=safe\n'* ]]
    [[ "$output" == *$'\nPLAN_CONFIG_DATA=/srv/svc\n'* ]]
    [[ "$output" == *$'\nSVC_TOKEN='"$SECRET"* ]] # the recipe asked for it by 'env'
    [[ "$output" != *"PLAN_CONFIG_TOKEN"* ]]       # but only there
    [[ "$output" == *$'\nPLAN_RUN_CONFIG_VERSION=3'* ]]
    cfg="$BATS_TEST_TMPDIR/cfg"
    [ "$(stat -c %a "$cfg")" = 700 ]
    [ "$(jq -c . "$cfg/config.json")" = '{"data":"/srv/svc","mode":"safe","motd":"hello","port":9000,"verbose":false}' ]
    [ "$(cat "$cfg/etc/motd.txt")" = hello ]
    [ "$(cat "$cfg/secrets/token")" = "$SECRET" ]
    [ "$(stat -c %a "$cfg/secrets/token")" = 600 ]
}

@test "an override file (JSON or YAML) wins for one run and is validated the same way" {
    p=$(build_svc)
    plan config set svc data /srv >/dev/null
    plan config set svc token t >/dev/null
    printf '{"port": 7000, "verbose": true, "mode": "fast"}' >"$BATS_TEST_TMPDIR/o.json"
    run runconfig svc "$p" "$BATS_TEST_TMPDIR/c1" "$BATS_TEST_TMPDIR/o.json"
    [ "$status" -eq 0 ]
    [ "${lines[1]}" = "overridden yes" ]
    [[ "$output" == *$'\nSVC_PORT=7000\n'* ]]
    [[ "$output" == *$'\nPLAN_CONFIG_VERBOSE=true\n'* ]]
    [ "$(jq -c '[.port, .verbose, .mode]' "$BATS_TEST_TMPDIR/c1/config.json")" = '[7000,true,"fast"]' ]
    [ "$(plan config get svc port)" = 8080 ] # nothing stored
    printf 'port: 7001\nmotd: "from yaml"\n' >"$BATS_TEST_TMPDIR/o.yaml"
    run runconfig svc "$p" "$BATS_TEST_TMPDIR/c2" "$BATS_TEST_TMPDIR/o.yaml"
    [ "$status" -eq 0 ]
    [ "$(cat "$BATS_TEST_TMPDIR/c2/etc/motd.txt")" = "from yaml" ]
    bad() {
        printf '%s' "$1" >"$BATS_TEST_TMPDIR/bad"
        run runconfig svc "$p" "$BATS_TEST_TMPDIR/c3" "$BATS_TEST_TMPDIR/bad"
        [ "$status" -eq 1 ] || { echo "accepted: $1"; return 1; }
        [[ "$output" == *"$2"* ]] || { echo "for $1: $output"; return 1; }
    }
    bad '{"port": "many"}' "config key 'port' of 'svc': expected an integer for type int, found 'many'"
    bad '{"mode": "quick"}' "expected one of 'fast', 'safe'"
    bad '{"colour": "red"}' "'svc' has no config key 'colour'"
    bad '{"port": [1]}' "the value of 'port' must be a single value"
    bad '[1, 2]' "an override file is a mapping of config keys to values"
    bad '{"port": ' "not valid JSON or YAML"
    run runconfig svc "$p" "$BATS_TEST_TMPDIR/c4" "$BATS_TEST_TMPDIR/missing.json"
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot read the override file"* ]]
}

@test "the schema comes from --path, else the profile's plan, else the newest in the store" {
    old=$(build_svc 1.0.0 int)
    new=$(build_svc 2.0.0 string)
    # the newest: port is a string in 2.0.0
    run plan config set svc port abc
    [ "$status" -eq 0 ]
    run plan config set svc port abd --path "$old"
    [ "$status" -eq 1 ]
    [[ "$output" == *"expected an integer for type int"* ]]
    # the profile's plan wins over the newest
    plan install --recipes "$R" svc@1.0.0 >/dev/null 2>&1
    run plan config set svc port abe
    [ "$status" -eq 1 ]
    run plan config set svc port abe --profile other
    [ "$status" -eq 0 ]
    # configuration belongs to the name: it survives the upgrade to 2.0.0,
    # and a value that no longer fits is reported, naming the way out
    plan config set svc port 5 >/dev/null
    plan config set svc data /d >/dev/null
    plan config set svc token t >/dev/null
    run runconfig svc "$new" "$BATS_TEST_TMPDIR/c"
    [ "$status" -eq 0 ]
    [[ "$output" == *$'\nSVC_PORT=5\n'* ]]
    plan config set svc port text --path "$new" >/dev/null
    run runconfig svc "$old" "$BATS_TEST_TMPDIR/c2"
    [ "$status" -eq 1 ]
    [[ "$output" == *"the value set in version 6 no longer fits the plan at '$old'"* ]]
    # --path must be a path of that name
    other=$(plan store add "$SRC" --name other --version 1.0)
    run plan config set svc port 1 --path "$other"
    [ "$status" -eq 1 ]
    [[ "$output" == *"is a store path of 'other', not of 'svc'"* ]]
    # a plan without a manifest declares nothing
    run plan config set other x 1
    [ "$status" -eq 1 ]
    [[ "$output" == *"'other' declares no configuration"* ]]
}

@test "usage errors exit 2; a name with no plan exits 1 and says what to do" {
    run plan config
    [ "$status" -eq 2 ]
    run plan config frob svc
    [ "$status" -eq 2 ]
    run plan config set svc port
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: plan config set NAME KEY VALUE [--secret]"* ]]
    run plan config get svc port --secret
    [ "$status" -eq 2 ]
    run plan config list "bad name"
    [ "$status" -eq 2 ]
    run plan config set svc port 1 --frob
    [ "$status" -eq 2 ]
    run plan config set nothing port 1
    [ "$status" -eq 1 ]
    [[ "$output" == *"no plan named 'nothing' is installed or in the store"*"--path"* ]]
    run plan config list nothing
    [ "$status" -eq 0 ]
    run plan config --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"Examples:"* ]]
}
