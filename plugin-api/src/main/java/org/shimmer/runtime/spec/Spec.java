package org.shimmer.runtime.spec;

import java.math.BigInteger;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.shimmer.runtime.InvalidSpecException;

/**
 * An OCI runtime spec as a host sets it: immutable, built with {@link #builder()}, written as OCI JSON by the
 * plugin. A spec built from nothing is what containerd gives a container: its default capabilities, no new
 * privileges, its default seccomp profile, masked and read-only {@code /proc} and {@code /sys} paths, its default
 * mounts, {@code RLIMIT_NOFILE} 1024/1024, new pid, ipc, uts, mount and network namespaces, root {@code rootfs}.
 * {@link Builder#build()} refuses what it can tell is invalid with an {@link InvalidSpecException} naming the
 * field; {@code args} may stay empty when an image supplies them.
 *
 * @param hostname null to keep the one the runtime gives
 * @param rootPath the root filesystem, relative to the bundle or absolute
 * @param seccomp null when unconfined
 */
public record Spec(Process process, String hostname, List<Mount> mounts, String rootPath, boolean readonlyRootfs,
        List<Namespace> namespaces, Resources resources, Seccomp seccomp, List<String> maskedPaths,
        List<String> readonlyPaths, Map<String, String> annotations) {

    /**
     * containerd's default mounts ({@code oci.WithDefaultSpec}), and the read-only {@code /sys/fs/cgroup} its CRI
     * plugin and Docker add on top.
     */
    public static final List<Mount> DEFAULT_MOUNTS = List.of(
            new Mount("/proc", "proc", "proc", List.of("nosuid", "noexec", "nodev")),
            new Mount("/dev", "tmpfs", "tmpfs", List.of("nosuid", "strictatime", "mode=755", "size=65536k")),
            new Mount("/dev/pts", "devpts", "devpts",
                    List.of("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
            new Mount("/dev/shm", "tmpfs", "shm", List.of("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
            new Mount("/dev/mqueue", "mqueue", "mqueue", List.of("nosuid", "noexec", "nodev")),
            new Mount("/sys", "sysfs", "sysfs", List.of("nosuid", "noexec", "nodev", "ro")),
            new Mount("/run", "tmpfs", "tmpfs", List.of("nosuid", "strictatime", "mode=755", "size=65536k")),
            new Mount("/sys/fs/cgroup", "cgroup", "cgroup", List.of("nosuid", "noexec", "nodev", "relatime", "ro")));

    /** containerd's masked paths: bind-mounted over with nothing. */
    public static final List<String> DEFAULT_MASKED_PATHS = List.of("/proc/acpi", "/proc/asound", "/proc/kcore",
            "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
            "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi");

    /** containerd's read-only paths. */
    public static final List<String> DEFAULT_READONLY_PATHS = List.of("/proc/bus", "/proc/fs", "/proc/irq",
            "/proc/sys", "/proc/sysrq-trigger");

    /** containerd's default namespaces: all new but user and cgroup. */
    public static final List<Namespace> DEFAULT_NAMESPACES = List.of(Namespace.of(Namespace.Type.PID),
            Namespace.of(Namespace.Type.IPC), Namespace.of(Namespace.Type.UTS), Namespace.of(Namespace.Type.MOUNT),
            Namespace.of(Namespace.Type.NETWORK));

    /** The PATH of a container's environment. */
    public static final String DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    public Spec {
        Checks.required("process", process);
        if (hostname != null) {
            checkHostname(hostname);
        }
        mounts = Checks.elements("mounts", mounts);
        Checks.noNul("root.path", rootPath);
        if (rootPath.isEmpty()) {
            throw InvalidSpecException.ofField("root.path", "empty");
        }
        namespaces = Checks.elements("linux.namespaces", namespaces);
        Set<Namespace.Type> types = EnumSet.noneOf(Namespace.Type.class);
        for (Namespace namespace : namespaces) {
            if (!types.add(namespace.type())) {
                throw InvalidSpecException.ofField("linux.namespaces",
                        "namespace " + namespace.type().ociName() + " given twice");
            }
            // The model has no uid/gid mappings, and runc refuses a user namespace without them.
            if (namespace.type() == Namespace.Type.USER) {
                throw InvalidSpecException.ofField("linux.namespaces",
                        "a user namespace needs uid/gid mappings, which this model cannot express");
            }
            // runc 1.1 does not know the time namespace: it fails at create.
            if (namespace.type() == Namespace.Type.TIME) {
                throw InvalidSpecException.ofField("linux.namespaces",
                        "the time namespace is not supported by runc 1.1");
            }
        }
        if (hostname != null && !types.contains(Namespace.Type.UTS)) {
            throw InvalidSpecException.ofField("hostname", "set without a new uts namespace");
        }
        Checks.required("linux.resources", resources);
        maskedPaths = Checks.absolutePaths("linux.maskedPaths", maskedPaths);
        readonlyPaths = Checks.absolutePaths("linux.readonlyPaths", readonlyPaths);
        // runc masks and write-protects paths with mounts, which need the container's own mount namespace.
        if (!types.contains(Namespace.Type.MOUNT) && (!maskedPaths.isEmpty() || !readonlyPaths.isEmpty())) {
            throw InvalidSpecException.ofField("linux.namespaces",
                    "masked or read-only paths set without a new mount namespace: clear them or keep mount");
        }
        if (!maskedPaths.isEmpty() || !readonlyPaths.isEmpty()) {
            checkNoSecondProcOrSysfs(mounts);
        }
        Checks.required("annotations", annotations);
        for (Map.Entry<String, String> annotation : annotations.entrySet()) {
            Checks.noNul("annotations", annotation.getKey());
            if (annotation.getKey().isEmpty()) {
                throw InvalidSpecException.ofField("annotations", "empty key");
            }
            Checks.noNul("annotations." + annotation.getKey(), annotation.getValue());
        }
        annotations = Collections.unmodifiableMap(new LinkedHashMap<>(annotations));
    }

    /**
     * runc masks and write-protects the paths given, under {@code /proc} and {@code /sys} only: a proc or sysfs
     * mounted anywhere else showed all of it, writable ({@code /proc2/sys}, {@code /proc2/timer_list}). A host that
     * wants that says so by clearing the masked and read-only paths (what Kubernetes' unmasked procMount does).
     */
    private static void checkNoSecondProcOrSysfs(List<Mount> mounts) {
        for (Mount mount : mounts) {
            String home = "proc".equals(mount.type()) ? "/proc" : "sysfs".equals(mount.type()) ? "/sys" : null;
            if (home != null && !Path.of(mount.destination()).normalize().toString().equals(home)) {
                throw InvalidSpecException.ofField("mounts", "a " + mount.type() + " at "
                        + Checks.printable(mount.destination()) + " shows what linux.maskedPaths and"
                        + " linux.readonlyPaths hide under " + home + ": mount it at " + home
                        + " only, or clear those paths");
            }
        }
    }

    // RFC 1123 labels (letters, digits, inner hyphens) joined by dots; the kernel takes at most 64 bytes.
    private static final String LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    private static final Pattern HOSTNAME = Pattern.compile(LABEL + "(\\." + LABEL + ")*");

    private static void checkHostname(String hostname) {
        Checks.noNul("hostname", hostname);
        if (hostname.length() > 64) {
            throw InvalidSpecException.ofField("hostname",
                    "longer than 64 characters (" + hostname.length() + "): " + Checks.printable(hostname));
        }
        if (!HOSTNAME.matcher(hostname).matches()) {
            throw InvalidSpecException.ofField("hostname", "not a valid hostname (letters, digits, inner hyphens,"
                    + " dot-separated labels): " + Checks.printable(hostname));
        }
    }

    /** A builder starting from the defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** The default spec. */
    public static Spec defaults() {
        return builder().build();
    }

    /** A builder starting from this spec. */
    public Builder toBuilder() {
        return new Builder(this);
    }

    /** Builds a {@link Spec}; every method returns this builder. Not thread-safe. */
    public static final class Builder {

        private Process.Builder process;
        private String hostname;
        private List<Mount> mounts;
        private String rootPath;
        private boolean readonlyRootfs;
        private final Map<Namespace.Type, Namespace> namespaces = new LinkedHashMap<>();
        private Resources.Builder resources;
        // Unset: containerd's default profile for the capabilities the spec ends up with.
        private boolean seccompDefault;
        private Seccomp seccomp;
        private List<String> maskedPaths;
        private List<String> readonlyPaths;
        private final Map<String, String> annotations = new LinkedHashMap<>();

        private Builder() {
            process = Process.builder();
            mounts = new ArrayList<>(DEFAULT_MOUNTS);
            rootPath = "rootfs";
            DEFAULT_NAMESPACES.forEach(namespace -> namespaces.put(namespace.type(), namespace));
            resources = Resources.builder();
            seccompDefault = true;
            maskedPaths = new ArrayList<>(DEFAULT_MASKED_PATHS);
            readonlyPaths = new ArrayList<>(DEFAULT_READONLY_PATHS);
        }

        private Builder(Spec spec) {
            process = spec.process.toBuilder();
            hostname = spec.hostname;
            mounts = new ArrayList<>(spec.mounts);
            rootPath = spec.rootPath;
            readonlyRootfs = spec.readonlyRootfs;
            spec.namespaces.forEach(namespace -> namespaces.put(namespace.type(), namespace));
            resources = spec.resources.toBuilder();
            // A default profile stays the default: it follows later capability changes.
            seccompDefault = spec.seccomp != null
                    && spec.seccomp.equals(Seccomp.defaultProfile(spec.process.capabilities().bounding()));
            seccomp = seccompDefault ? null : spec.seccomp;
            maskedPaths = new ArrayList<>(spec.maskedPaths);
            readonlyPaths = new ArrayList<>(spec.readonlyPaths);
            annotations.putAll(spec.annotations);
        }

        /** Replaces the whole process. */
        public Builder process(Process process) {
            this.process = Checks.required("process", process).toBuilder();
            return this;
        }

        /** The command and its arguments; empty when an image supplies them. */
        public Builder args(String... args) {
            process.args(args);
            return this;
        }

        /** Sets environment variable {@code name} (replacing an earlier value; PATH is set by default). */
        public Builder env(String name, String value) {
            process.env(name, value);
            return this;
        }

        /** The working directory, absolute; {@code /} by default. */
        public Builder cwd(String cwd) {
            process.cwd(cwd);
            return this;
        }

        /** The user and group ids the process runs as; {@code 0:0} by default. */
        public Builder user(int uid, int gid) {
            process.user(uid, gid);
            return this;
        }

        /** Supplementary group ids. */
        public Builder additionalGids(int... gids) {
            process.additionalGids(gids);
            return this;
        }

        /** Whether the process gets a terminal; false by default. True needs a {@code Stdio.terminal} for it. */
        public Builder terminal(boolean terminal) {
            process.terminal(terminal);
            return this;
        }

        /** Sets the limit of {@code type} (e.g. {@code RLIMIT_NOFILE}), replacing an earlier one. */
        public Builder rlimit(String type, long soft, long hard) {
            process.rlimit(type, soft, hard);
            return this;
        }

        /** The bounding, effective and permitted capabilities, replacing the default set. */
        public Builder capabilities(String... names) {
            process.capabilities(names);
            return this;
        }

        /** All five capability sets. */
        public Builder capabilities(Capabilities capabilities) {
            process.capabilities(capabilities);
            return this;
        }

        /** Adds a capability to the bounding, effective and permitted sets. */
        public Builder addCapability(String name) {
            process.addCapability(name);
            return this;
        }

        /** Removes a capability from every set. */
        public Builder dropCapability(String name) {
            process.dropCapability(name);
            return this;
        }

        /** Whether the process may gain privileges (setuid binaries, file capabilities); true by default. */
        public Builder noNewPrivileges(boolean noNewPrivileges) {
            process.noNewPrivileges(noNewPrivileges);
            return this;
        }

        /** The container's hostname; needs a new uts namespace. */
        public Builder hostname(String hostname) {
            this.hostname = hostname;
            return this;
        }

        /** Mounts the root filesystem read-only; false by default. */
        public Builder readonlyRootfs(boolean readonly) {
            this.readonlyRootfs = readonly;
            return this;
        }

        /** The root filesystem: relative to the bundle, or absolute; {@code rootfs} by default. */
        public Builder rootPath(String rootPath) {
            this.rootPath = rootPath;
            return this;
        }

        /** Adds a mount after the others. */
        public Builder addMount(Mount mount) {
            mounts.add(Checks.required("mounts", mount));
            return this;
        }

        /** Replaces every mount, the default ones too. */
        public Builder mounts(List<Mount> mounts) {
            this.mounts = new ArrayList<>(Checks.required("mounts", mounts));
            return this;
        }

        /** Replaces the namespaces with new ones of {@code types}. */
        public Builder namespaces(Namespace.Type... types) {
            namespaces.clear();
            for (Namespace.Type type : types) {
                namespace(Namespace.of(type));
            }
            return this;
        }

        /** Adds a namespace, replacing one of the same type. */
        public Builder namespace(Namespace namespace) {
            Checks.required("linux.namespaces", namespace);
            namespaces.put(namespace.type(), namespace);
            return this;
        }

        /**
         * Replaces the namespaces.
         *
         * @throws InvalidSpecException naming {@code linux.namespaces} when a type is given twice
         */
        public Builder namespaces(List<Namespace> namespaces) {
            Set<Namespace.Type> seen = EnumSet.noneOf(Namespace.Type.class);
            for (Namespace namespace : Checks.required("linux.namespaces", namespaces)) {
                Checks.required("linux.namespaces", namespace);
                if (!seen.add(namespace.type())) {
                    throw InvalidSpecException.ofField("linux.namespaces",
                            "namespace " + namespace.type().ociName() + " given twice");
                }
            }
            this.namespaces.clear();
            namespaces.forEach(this::namespace);
            return this;
        }

        /** Shares the host's namespace of {@code type}: the container gets no new one. */
        public Builder withoutNamespace(Namespace.Type type) {
            namespaces.remove(type);
            return this;
        }

        /** Replaces every resource limit. */
        public Builder resources(Resources resources) {
            this.resources = Checks.required("linux.resources", resources).toBuilder();
            return this;
        }

        /** The memory limit in bytes. */
        public Builder memoryLimit(long bytes) {
            resources.memoryLimit(bytes);
            return this;
        }

        /** The CPU time, in CPUs: a CFS quota of {@code cpus} × 100000 µs per 100000 µs period. */
        public Builder cpus(double cpus) {
            resources.cpus(cpus);
            return this;
        }

        /** The maximum number of processes. */
        public Builder pidsLimit(long limit) {
            resources.pidsLimit(limit);
            return this;
        }

        /** Filters syscalls with {@code seccomp} instead of the default profile. */
        public Builder seccomp(Seccomp seccomp) {
            this.seccomp = Checks.required("linux.seccomp", seccomp);
            this.seccompDefault = false;
            return this;
        }

        /** Filters no syscall: unconfined. */
        public Builder seccompUnconfined() {
            this.seccomp = null;
            this.seccompDefault = false;
            return this;
        }

        /** containerd's default profile for the capabilities the spec ends up with (the default). */
        public Builder seccompDefault() {
            this.seccomp = null;
            this.seccompDefault = true;
            return this;
        }

        /** Replaces the paths masked in the container. */
        public Builder maskedPaths(List<String> paths) {
            this.maskedPaths = new ArrayList<>(Checks.required("linux.maskedPaths", paths));
            return this;
        }

        /** Replaces the paths read-only in the container. */
        public Builder readonlyPaths(List<String> paths) {
            this.readonlyPaths = new ArrayList<>(Checks.required("linux.readonlyPaths", paths));
            return this;
        }

        /** Sets an annotation. */
        public Builder annotation(String key, String value) {
            annotations.put(Checks.required("annotations", key), Checks.required("annotations." + key, value));
            return this;
        }

        /**
         * The spec.
         *
         * @throws InvalidSpecException naming the first field found invalid
         */
        public Spec build() {
            Process built = process.build();
            Seccomp filter = seccompDefault ? Seccomp.defaultProfile(built.capabilities().bounding()) : seccomp;
            return new Spec(built, hostname, mounts, rootPath, readonlyRootfs, new ArrayList<>(namespaces.values()),
                    resources.build(), filter, maskedPaths, readonlyPaths, annotations);
        }
    }

    /**
     * The container's process, or an exec's. Its defaults are the default spec's process: root, the default
     * capabilities. An exec built from nothing is as confined as a default container, not as the container it runs
     * in: to inherit that one's user and capabilities, start from its {@code spec.process().toBuilder()}.
     *
     * @param env names to values, in order
     * @param rlimits at most one per type
     */
    public record Process(List<String> args, Map<String, String> env, String cwd, int uid, int gid,
            List<Integer> additionalGids, boolean terminal, List<Rlimit> rlimits, Capabilities capabilities,
            boolean noNewPrivileges) {

        public Process {
            args = Checks.noNulEach("process.args", args);
            Checks.required("process.env", env);
            for (Map.Entry<String, String> variable : env.entrySet()) {
                String name = Checks.noNul("process.env", variable.getKey());
                if (name.isEmpty() || name.indexOf('=') >= 0) {
                    throw InvalidSpecException.ofField("process.env",
                            "invalid name " + Checks.printable(name) + ": empty or containing '='");
                }
                Checks.noNul("process.env." + name, variable.getValue());
            }
            env = Collections.unmodifiableMap(new LinkedHashMap<>(env));
            Checks.absolutePath("process.cwd", cwd);
            if (uid < 0) {
                throw InvalidSpecException.ofField("process.user.uid", "negative: " + uid);
            }
            if (gid < 0) {
                throw InvalidSpecException.ofField("process.user.gid", "negative: " + gid);
            }
            additionalGids = Checks.elements("process.user.additionalGids", additionalGids);
            for (int additional : additionalGids) {
                if (additional < 0) {
                    throw InvalidSpecException.ofField("process.user.additionalGids", "negative: " + additional);
                }
            }
            rlimits = Checks.elements("process.rlimits", rlimits);
            Set<String> types = new LinkedHashSet<>();
            for (Rlimit rlimit : rlimits) {
                if (!types.add(Checks.required("process.rlimits", rlimit).type())) {
                    throw InvalidSpecException.ofField("process.rlimits", rlimit.type() + " given twice");
                }
            }
            Checks.required("process.capabilities", capabilities);
        }

        /**
         * A builder starting from the default spec's process (uid 0, the default capabilities), not from any
         * container's: see {@link Process}.
         */
        public static Builder builder() {
            return new Builder();
        }

        /** A builder starting from this process. */
        public Builder toBuilder() {
            return new Builder(this);
        }

        /** Builds a {@link Process}; every method returns this builder. Not thread-safe. */
        public static final class Builder {

            private List<String> args = List.of();
            private final Map<String, String> env = new LinkedHashMap<>();
            private String cwd = "/";
            private int uid;
            private int gid;
            private List<Integer> additionalGids = List.of();
            private boolean terminal;
            private final Map<String, Rlimit> rlimits = new LinkedHashMap<>();
            private Set<String> bounding;
            private Set<String> effective;
            private Set<String> permitted;
            private Set<String> inheritable;
            private Set<String> ambient;
            private boolean noNewPrivileges = true;

            private Builder() {
                env.put("PATH", DEFAULT_PATH);
                rlimits.put("RLIMIT_NOFILE", new Rlimit("RLIMIT_NOFILE", 1024, 1024));
                capabilities(Capabilities.DEFAULT);
            }

            private Builder(Process process) {
                args = process.args;
                env.putAll(process.env);
                cwd = process.cwd;
                uid = process.uid;
                gid = process.gid;
                additionalGids = process.additionalGids;
                terminal = process.terminal;
                process.rlimits.forEach(rlimit -> rlimits.put(rlimit.type(), rlimit));
                capabilities(process.capabilities);
                noNewPrivileges = process.noNewPrivileges;
            }

            /** The command and its arguments. */
            public Builder args(String... args) {
                this.args = new ArrayList<>(Arrays.asList(Checks.required("process.args", args)));
                return this;
            }

            /** The command and its arguments. */
            public Builder args(List<String> args) {
                this.args = new ArrayList<>(Checks.required("process.args", args));
                return this;
            }

            /** Sets environment variable {@code name}, replacing an earlier value. */
            public Builder env(String name, String value) {
                env.put(Checks.required("process.env", name), Checks.required("process.env." + name, value));
                return this;
            }

            /** Removes environment variable {@code name}. */
            public Builder removeEnv(String name) {
                env.remove(name);
                return this;
            }

            /** Replaces the whole environment. */
            public Builder env(Map<String, String> env) {
                this.env.clear();
                Checks.required("process.env", env).forEach(this::env);
                return this;
            }

            /** The working directory, absolute. */
            public Builder cwd(String cwd) {
                this.cwd = cwd;
                return this;
            }

            /** The user and group ids. */
            public Builder user(int uid, int gid) {
                this.uid = uid;
                this.gid = gid;
                return this;
            }

            /** Supplementary group ids. */
            public Builder additionalGids(int... gids) {
                List<Integer> list = new ArrayList<>();
                for (int id : gids) {
                    list.add(id);
                }
                this.additionalGids = list;
                return this;
            }

            /** Whether the process gets a terminal. */
            public Builder terminal(boolean terminal) {
                this.terminal = terminal;
                return this;
            }

            /** Sets the limit of {@code type}, replacing an earlier one. */
            public Builder rlimit(String type, long soft, long hard) {
                Rlimit rlimit = new Rlimit(type, soft, hard);
                rlimits.put(rlimit.type(), rlimit);
                return this;
            }

            /** Removes every rlimit. */
            public Builder clearRlimits() {
                rlimits.clear();
                return this;
            }

            /** The bounding, effective and permitted capabilities; none inheritable or ambient. */
            public Builder capabilities(String... names) {
                return capabilities(Capabilities.of(Arrays.asList(Checks.required("process.capabilities", names))));
            }

            /** All five capability sets. */
            public Builder capabilities(Capabilities capabilities) {
                Checks.required("process.capabilities", capabilities);
                bounding = new LinkedHashSet<>(capabilities.bounding());
                effective = new LinkedHashSet<>(capabilities.effective());
                permitted = new LinkedHashSet<>(capabilities.permitted());
                inheritable = new LinkedHashSet<>(capabilities.inheritable());
                ambient = new LinkedHashSet<>(capabilities.ambient());
                return this;
            }

            /** Adds a capability to the bounding, effective and permitted sets. */
            public Builder addCapability(String name) {
                String canonical = Capabilities.canonicalName("process.capabilities", name);
                bounding.add(canonical);
                effective.add(canonical);
                permitted.add(canonical);
                return this;
            }

            /** Removes a capability from every set. */
            public Builder dropCapability(String name) {
                String canonical = Capabilities.canonicalName("process.capabilities", name);
                for (Set<String> set : List.of(bounding, effective, permitted, inheritable, ambient)) {
                    set.remove(canonical);
                }
                return this;
            }

            /** Whether the process may gain privileges. */
            public Builder noNewPrivileges(boolean noNewPrivileges) {
                this.noNewPrivileges = noNewPrivileges;
                return this;
            }

            /**
             * The process.
             *
             * @throws InvalidSpecException naming the first field found invalid
             */
            public Process build() {
                return new Process(args, env, cwd, uid, gid, additionalGids, terminal,
                        new ArrayList<>(rlimits.values()),
                        new Capabilities(bounding, effective, permitted, inheritable, ambient), noNewPrivileges);
            }
        }
    }

    /**
     * The container's cgroup limits; null fields are left as the runtime sets them.
     *
     * @param memoryLimit bytes
     * @param cpuQuota microseconds of CPU time per {@code cpuPeriod}
     * @param cpuPeriod microseconds
     * @param cpuShares the relative weight
     * @param cpusetCpus the CPUs the container may run on, e.g. {@code 0-1}
     * @param pidsLimit the maximum number of processes
     */
    public record Resources(Long memoryLimit, Long cpuQuota, Long cpuPeriod, Long cpuShares, String cpusetCpus,
            Long pidsLimit) {

        /** The CFS period {@link Builder#cpus(double)} uses, in microseconds. */
        public static final long CPU_PERIOD = 100_000;

        /** No limit set. */
        public static final Resources NONE = new Resources(null, null, null, null, null, null);

        /**
         * The least memory limit taken, 6 MiB: Docker's floor. Below it runc's init and the kernel's own charges
         * leave the process nothing, and it is killed at start or soon after.
         */
        public static final long MIN_MEMORY = 6L * 1024 * 1024;

        /** The kernel's CFS bounds: a period of 1 ms to 1 s, a quota of at least 1 ms. */
        public static final long MIN_CPU_PERIOD = 1000;
        public static final long MAX_CPU_PERIOD = 1_000_000;
        public static final long MIN_CPU_QUOTA = 1000;

        /** The most CPUs a quota may give: beyond, the quota overflows what the kernel takes. */
        public static final long MAX_CPUS = 1_000_000;

        /** The cgroup v1 shares range runc and the kernel take. */
        public static final long MIN_CPU_SHARES = 2;
        public static final long MAX_CPU_SHARES = 262_144;

        /**
         * The most processes a pids limit may allow: the kernel's {@code PID_MAX_LIMIT} on 64-bit Linux. Its
         * {@code pids.max} refuses more with EINVAL, and runc's create failed.
         */
        public static final long MAX_PIDS = 4L * 1024 * 1024;

        // A cpuset list: CPU numbers and ranges, comma-separated, e.g. 0-3,5.
        private static final Pattern CPU_LIST = Pattern.compile("\\d+(-\\d+)?(,\\d+(-\\d+)?)*");

        public Resources {
            if (memoryLimit != null && memoryLimit < MIN_MEMORY) {
                throw InvalidSpecException.ofField("linux.resources.memory.limit",
                        "must be at least 6 MiB (" + MIN_MEMORY + " bytes, Docker's floor), was " + memoryLimit);
            }
            if (cpuPeriod != null) {
                Checks.between("linux.resources.cpu.period", cpuPeriod, MIN_CPU_PERIOD, MAX_CPU_PERIOD);
            }
            if (cpuQuota != null) {
                // Without a period the kernel keeps its default, CPU_PERIOD.
                Checks.between("linux.resources.cpu.quota", cpuQuota, MIN_CPU_QUOTA,
                        MAX_CPUS * (cpuPeriod == null ? CPU_PERIOD : cpuPeriod));
            }
            if (cpuShares != null) {
                Checks.between("linux.resources.cpu.shares", cpuShares, MIN_CPU_SHARES, MAX_CPU_SHARES);
            }
            if (cpusetCpus != null) {
                checkCpuList(cpusetCpus);
            }
            if (pidsLimit != null) {
                Checks.between("linux.resources.pids.limit", pidsLimit, 1, MAX_PIDS);
            }
        }

        private static void checkCpuList(String cpus) {
            Checks.noNul("linux.resources.cpu.cpus", cpus);
            if (!CPU_LIST.matcher(cpus).matches()) {
                throw InvalidSpecException.ofField("linux.resources.cpu.cpus",
                        "not a CPU list like 0-3,5: " + Checks.printable(cpus));
            }
            for (String range : cpus.split(",")) {
                String[] bounds = range.split("-");
                if (bounds.length == 2 && new BigInteger(bounds[0]).compareTo(new BigInteger(bounds[1])) > 0) {
                    throw InvalidSpecException.ofField("linux.resources.cpu.cpus",
                            "range " + range + " runs backwards in " + Checks.printable(cpus));
                }
            }
        }

        /** A builder with no limit set. */
        public static Builder builder() {
            return new Builder(NONE);
        }

        /** A builder starting from these limits. */
        public Builder toBuilder() {
            return new Builder(this);
        }

        /** Builds {@link Resources}; every method returns this builder. Not thread-safe. */
        public static final class Builder {

            private Long memoryLimit;
            private Long cpuQuota;
            private Long cpuPeriod;
            private Long cpuShares;
            private String cpusetCpus;
            private Long pidsLimit;
            // Checked at build, like every other field.
            private Double cpus;

            private Builder(Resources from) {
                memoryLimit = from.memoryLimit;
                cpuQuota = from.cpuQuota;
                cpuPeriod = from.cpuPeriod;
                cpuShares = from.cpuShares;
                cpusetCpus = from.cpusetCpus;
                pidsLimit = from.pidsLimit;
            }

            /** The memory limit in bytes. */
            public Builder memoryLimit(long bytes) {
                this.memoryLimit = bytes;
                return this;
            }

            /** The CPU time, in CPUs: a quota of {@code cpus} × {@link #CPU_PERIOD} per {@link #CPU_PERIOD}. */
            public Builder cpus(double cpus) {
                this.cpus = cpus;
                return this;
            }

            /** The CFS quota and period, in microseconds. */
            public Builder cpuQuota(long quota, long period) {
                this.cpus = null;
                this.cpuQuota = quota;
                this.cpuPeriod = period;
                return this;
            }

            /** The relative CPU weight. */
            public Builder cpuShares(long shares) {
                this.cpuShares = shares;
                return this;
            }

            /** The CPUs the container may run on, e.g. {@code 0-1}. */
            public Builder cpusetCpus(String cpus) {
                this.cpusetCpus = cpus;
                return this;
            }

            /** The maximum number of processes. */
            public Builder pidsLimit(long limit) {
                this.pidsLimit = limit;
                return this;
            }

            /**
             * The limits.
             *
             * @throws InvalidSpecException naming the first field found invalid
             */
            public Resources build() {
                Long quota = cpuQuota;
                Long period = cpuPeriod;
                if (cpus != null) {
                    // The kernel refuses a quota under 1 ms (0.01 CPUs of a 100 ms period); a larger one than
                    // MAX_CPUS would overflow what it takes.
                    if (cpus.isNaN() || cpus < 0.01 || cpus > MAX_CPUS) {
                        throw InvalidSpecException.ofField("cpus",
                                "must be 0.01 to " + MAX_CPUS + " CPUs, was " + cpus);
                    }
                    quota = Math.round(cpus * CPU_PERIOD);
                    period = CPU_PERIOD;
                }
                return new Resources(memoryLimit, quota, period, cpuShares, cpusetCpus, pidsLimit);
            }
        }
    }
}
