# Sourced by bin/test and bin/demo: makes a fresh Debian machine ready to build and run Shimmer.
# Installs the OS packages the runtime drives (runc, the containerd shim, a static busybox for test rootfs
# images) when they are missing, and points JAVA_HOME at a JDK 25.

shimmer_packages=(runc containerd busybox-static)

# Image layers compressed with zstd: the plugin decompresses through the system libzstd, tests compress with the CLI.
shimmer_packages+=(zstd libzstd1)

shimmer_install_packages() {
  local missing=()
  for package in "${shimmer_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing OS packages ${missing[*]}; run as root so they can be installed" >&2
    exit 1
  fi
  echo "installing OS packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

shimmer_find_jdk() {
  local candidate
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25-jdk-*; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/javac" ] || continue
    local version
    version=$("$candidate/bin/java" -XshowSettings:properties -version 2>&1 \
      | sed -n 's/^ *java.specification.version = //p')
    if [ "${version%%.*}" -ge 25 ] 2>/dev/null; then
      export JAVA_HOME="$candidate"
      return 0
    fi
  done
  echo "error: no JDK 25 found; install Temurin 25 at /usr/lib/jvm/temurin-25-jdk-amd64 or set JAVA_HOME" >&2
  exit 1
}

# The image tests and benchmarks/run-images build OCI images from busybox-static with umoci and skopeo.
shimmer_packages+=(umoci skopeo)

# LayerSyncTest traces an import with strace to see each layer synced before it is named.
shimmer_packages+=(strace)

# ImageRunCrashTest runs the host it kills under a few lines of python3 that stand in for init: a subreaper that
# reaps what the killed host leaves (a runc it started), as init would on a real machine.
shimmer_packages+=(python3)

shimmer_install_packages
shimmer_find_jdk
export PATH="$JAVA_HOME/bin:$PATH"
