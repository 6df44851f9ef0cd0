package org.shimmer.examples.host;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.stream.Collectors;

/**
 * A minimal OCI runtime spec for running one command on a read-only root filesystem: the usual namespaces,
 * {@code /proc}, {@code /dev}, {@code /sys}, {@code /tmp}, and few capabilities. Hosts with real images would take
 * the image's config; this is enough for a busybox rootfs.
 */
public final class OciSpecs {

    private static final String CAPABILITIES = "[\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]";

    private OciSpecs() {}

    /** A spec running {@code args} with root {@code rootfs} (relative to the bundle), read-only. */
    public static byte[] command(List<String> args) {
        String argv = args.stream().map(OciSpecs::quote).collect(Collectors.joining(", ", "[", "]"));
        return ("""
                {
                  "ociVersion": "1.0.2",
                  "process": {
                    "terminal": false,
                    "user": {"uid": 0, "gid": 0},
                    "args": %s,
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "cwd": "/",
                    "capabilities": {"bounding": %s, "effective": %s, "permitted": %s},
                    "noNewPrivileges": true
                  },
                  "root": {"path": "rootfs", "readonly": true},
                  "hostname": "shimmer",
                  "mounts": [
                    {"destination": "/proc", "type": "proc", "source": "proc"},
                    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
                  ],
                  "linux": {
                    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
                    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
                  }
                }
                """.formatted(argv, CAPABILITIES, CAPABILITIES, CAPABILITIES)).getBytes(StandardCharsets.UTF_8);
    }

    /** An OCI {@code Process} (for exec) running {@code args}. */
    public static byte[] process(List<String> args) {
        String argv = args.stream().map(OciSpecs::quote).collect(Collectors.joining(", ", "[", "]"));
        return ("""
                {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": %s,
                 "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/"}
                """.formatted(argv)).getBytes(StandardCharsets.UTF_8);
    }

    private static String quote(String value) {
        StringBuilder quoted = new StringBuilder("\"");
        for (char c : value.toCharArray()) {
            switch (c) {
                case '"' -> quoted.append("\\\"");
                case '\\' -> quoted.append("\\\\");
                case '\n' -> quoted.append("\\n");
                case '\t' -> quoted.append("\\t");
                default -> {
                    if (c < 0x20) {
                        quoted.append(String.format("\\u%04x", (int) c));
                    } else {
                        quoted.append(c);
                    }
                }
            }
        }
        return quoted.append('"').toString();
    }
}
