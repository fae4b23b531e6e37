# Debian packages that building, testing and the demo need; installed when missing.
# gcc only recommends the C library headers, so they are named here.
MULTINIC_DEPS=(
        meson ninja-build pkg-config gcc libc6-dev linux-libc-dev
        libsystemd-dev libudev-dev libcurl4-openssl-dev libmicrohttpd-dev libnl-3-dev libnl-route-3-dev libcjson-dev libyaml-dev uuid-dev
        dbus systemd iproute2 procps util-linux python3 python3-pytest python3-dbus
        curl jq openssl python3-yaml
        netplan.io network-manager udev
        python3-jsonschema openssl curl
        polkitd
        scdoc debhelper dpkg-dev build-essential groff-base python3-seccomp
        lintian rpm rpmlint file strace
        nodejs
)
# tests/integration/test_crd.py evaluates the CRD's CEL rules on Node.js (tests/cel) and installs
# that directory's pinned packages with npm. NodeSource's nodejs package ships its own npm and
# conflicts with Debian's, so npm is named only when there is none.
command -v npm >/dev/null 2>&1 || MULTINIC_DEPS+=(npm)

deps_install() {
        local missing=()
        local p
        for p in "${MULTINIC_DEPS[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
                        missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        echo "Installing Debian packages: ${missing[*]}" >&2
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}
