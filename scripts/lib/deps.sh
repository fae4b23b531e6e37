# Debian packages that building, testing and the demo need; installed when missing.
MULTINIC_DEPS=(
        meson ninja-build pkg-config gcc
        libsystemd-dev libnl-3-dev libnl-route-3-dev libudev-dev libcjson-dev libyaml-dev
        dbus systemd iproute2 procps kmod python3 python3-pytest python3-yaml python3-dbus
)

deps_install() {
        local missing=()
        local p
        for p in "${MULTINIC_DEPS[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
                        missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        echo "installing: ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" >/dev/null
}
