# Sourced by scripts/*.sh: the test MongoDB server, nx-27017 (MongoDB wire
# protocol on SQLite), installed from PyPI into its own venv and put on
# PATH. Idempotent: a second call only checks the version.
NX27017_VERSION=0.8.1
NX27017_VENV=${NX27017_VENV:-/var/cache/edgeprobe/nx-27017-$NX27017_VERSION}

ensure_nx27017() {
    if [[ ! -x $NX27017_VENV/bin/nx-27017 ]]; then
        echo "installing nx-27017 $NX27017_VERSION (test MongoDB server) into $NX27017_VENV"
        rm -rf "$NX27017_VENV"
        mkdir -p "$(dirname "$NX27017_VENV")"
        /usr/bin/python3 -m venv "$NX27017_VENV"
        "$NX27017_VENV/bin/pip" install -q --disable-pip-version-check "nx-27017==$NX27017_VERSION"
    fi
    export PATH="$NX27017_VENV/bin:$PATH"
}
