package org.shimmer.runtime.linux.spec;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.JsonRecyclerPools;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigInteger;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.spec.Capabilities;
import org.shimmer.runtime.spec.Mount;
import org.shimmer.runtime.spec.Namespace;
import org.shimmer.runtime.spec.Rlimit;
import org.shimmer.runtime.spec.Seccomp;
import org.shimmer.runtime.spec.Spec;

/**
 * Writes the typed {@link Spec} as OCI runtime-spec JSON (the version runc 1.1 reads), each part where the OCI
 * schema puts it. The spec was validated when built; this only places it.
 */
public final class OciJson {

    /** The runtime-spec version written: the one containerd 1.6 and runc 1.1 speak. */
    public static final String OCI_VERSION = "1.0.2";

    // Jackson's default buffer recycler keeps a ThreadLocal on every thread that writes; a value of a plugin class
    // on a host thread pins the plugin's class loader after unload. A shared pool keeps nothing per thread.
    private static final ObjectMapper MAPPER = JsonMapper.builder(JsonFactory.builder()
                    .recyclerPool(JsonRecyclerPools.newConcurrentDequePool())
                    .build())
            .build();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private OciJson() {}

    /**
     * The bundle's {@code config.json}.
     *
     * @param cgroupsPath the container's cgroup, e.g. {@code /shimmer-<hash>/<namespace>/<id>} ({@link CgroupPaths})
     */
    public static byte[] spec(Spec spec, String cgroupsPath) {
        required("spec", spec);
        ObjectNode root = NODES.objectNode();
        root.put("ociVersion", OCI_VERSION);
        root.set("process", process(spec.process()));
        ObjectNode fs = root.putObject("root");
        fs.put("path", spec.rootPath());
        fs.put("readonly", spec.readonlyRootfs());
        if (spec.hostname() != null) {
            root.put("hostname", spec.hostname());
        }
        ArrayNode mounts = root.putArray("mounts");
        spec.mounts().forEach(mount -> mounts.add(mount(mount)));
        if (!spec.annotations().isEmpty()) {
            ObjectNode annotations = root.putObject("annotations");
            spec.annotations().forEach(annotations::put);
        }
        ObjectNode linux = root.putObject("linux");
        ObjectNode resources = resources(spec.resources());
        // containerd's default: no device but those runc creates for every container.
        ObjectNode denyAll = resources.putArray("devices").addObject();
        denyAll.put("allow", false);
        denyAll.put("access", "rwm");
        linux.set("resources", resources);
        linux.put("cgroupsPath", cgroupsPath);
        ArrayNode namespaces = linux.putArray("namespaces");
        for (Namespace namespace : spec.namespaces()) {
            ObjectNode node = namespaces.addObject();
            node.put("type", namespace.type().ociName());
            if (namespace.path() != null) {
                node.put("path", namespace.path());
            }
        }
        strings(linux.putArray("maskedPaths"), spec.maskedPaths());
        strings(linux.putArray("readonlyPaths"), spec.readonlyPaths());
        if (spec.seccomp() != null) {
            linux.set("seccomp", seccomp(spec.seccomp()));
        }
        return write(root);
    }

    /** An exec's process: an OCI {@code Process}; an exec needs a command. */
    public static byte[] execProcess(Spec.Process process) {
        required("process", process);
        if (process.args().isEmpty()) {
            throw InvalidSpecException.ofField("process.args", "empty: an exec needs a command");
        }
        return write(process(process));
    }

    /** An update's limits: an OCI {@code LinuxResources}; null limits are not written, so left unchanged. */
    public static byte[] updateResources(Spec.Resources resources) {
        required("linux.resources", resources);
        return write(resources(resources));
    }

    private static ObjectNode process(Spec.Process process) {
        ObjectNode node = NODES.objectNode();
        node.put("terminal", process.terminal());
        ObjectNode user = node.putObject("user");
        user.put("uid", process.uid());
        user.put("gid", process.gid());
        if (!process.additionalGids().isEmpty()) {
            ArrayNode gids = user.putArray("additionalGids");
            process.additionalGids().forEach(gids::add);
        }
        strings(node.putArray("args"), process.args());
        ArrayNode env = node.putArray("env");
        process.env().forEach((name, value) -> env.add(name + "=" + value));
        node.put("cwd", process.cwd());
        Capabilities capabilities = process.capabilities();
        ObjectNode caps = node.putObject("capabilities");
        capabilities(caps.putArray("bounding"), capabilities.bounding());
        capabilities(caps.putArray("effective"), capabilities.effective());
        capabilities(caps.putArray("permitted"), capabilities.permitted());
        if (!capabilities.inheritable().isEmpty()) {
            capabilities(caps.putArray("inheritable"), capabilities.inheritable());
        }
        if (!capabilities.ambient().isEmpty()) {
            capabilities(caps.putArray("ambient"), capabilities.ambient());
        }
        if (!process.rlimits().isEmpty()) {
            ArrayNode rlimits = node.putArray("rlimits");
            for (Rlimit rlimit : process.rlimits()) {
                ObjectNode limit = rlimits.addObject();
                limit.put("type", rlimit.type());
                limit.put("hard", unsigned(rlimit.hard()));
                limit.put("soft", unsigned(rlimit.soft()));
            }
        }
        node.put("noNewPrivileges", process.noNewPrivileges());
        return node;
    }

    private static ObjectNode resources(Spec.Resources resources) {
        ObjectNode node = NODES.objectNode();
        if (resources.memoryLimit() != null) {
            node.putObject("memory").put("limit", resources.memoryLimit());
        }
        if (resources.cpuShares() != null || resources.cpuQuota() != null || resources.cpuPeriod() != null
                || resources.cpusetCpus() != null) {
            ObjectNode cpu = node.putObject("cpu");
            if (resources.cpuShares() != null) {
                cpu.put("shares", resources.cpuShares());
            }
            // Each on its own, as runc and docker take them: a period without a quota was dropped, and a quota
            // without a period was written with "period": null.
            if (resources.cpuQuota() != null) {
                cpu.put("quota", resources.cpuQuota());
            }
            if (resources.cpuPeriod() != null) {
                cpu.put("period", resources.cpuPeriod());
            }
            if (resources.cpusetCpus() != null) {
                cpu.put("cpus", resources.cpusetCpus());
            }
        }
        if (resources.pidsLimit() != null) {
            node.putObject("pids").put("limit", resources.pidsLimit());
        }
        return node;
    }

    private static ObjectNode mount(Mount mount) {
        ObjectNode node = NODES.objectNode();
        node.put("destination", mount.destination());
        if (mount.type() != null) {
            node.put("type", mount.type());
        }
        if (mount.source() != null) {
            node.put("source", mount.source());
        }
        if (!mount.options().isEmpty()) {
            strings(node.putArray("options"), mount.options());
        }
        return node;
    }

    private static ObjectNode seccomp(Seccomp seccomp) {
        ObjectNode node = NODES.objectNode();
        node.put("defaultAction", seccomp.defaultAction());
        if (seccomp.defaultErrnoRet() != null) {
            node.put("defaultErrnoRet", seccomp.defaultErrnoRet());
        }
        strings(node.putArray("architectures"), seccomp.architectures());
        ArrayNode syscalls = node.putArray("syscalls");
        for (Seccomp.Syscall syscall : seccomp.syscalls()) {
            ObjectNode rule = syscalls.addObject();
            strings(rule.putArray("names"), syscall.names());
            rule.put("action", syscall.action());
            if (syscall.errnoRet() != null) {
                rule.put("errnoRet", syscall.errnoRet());
            }
            if (!syscall.args().isEmpty()) {
                ArrayNode args = rule.putArray("args");
                for (Seccomp.Arg arg : syscall.args()) {
                    ObjectNode condition = args.addObject();
                    condition.put("index", arg.index());
                    condition.put("value", unsigned(arg.value()));
                    condition.put("valueTwo", unsigned(arg.valueTwo()));
                    condition.put("op", arg.op());
                }
            }
        }
        return node;
    }

    /** In bit order: the same spec always gives the same bytes. */
    private static void capabilities(ArrayNode array, Collection<String> names) {
        names.stream().sorted(Comparator.comparingInt(Capabilities::bit)).forEach(array::add);
    }

    private static void strings(ArrayNode array, List<String> values) {
        values.forEach(array::add);
    }

    /** OCI's uint64 fields: all bits set is the largest value, not -1. */
    private static BigInteger unsigned(long value) {
        return new BigInteger(Long.toUnsignedString(value));
    }

    private static <T> T required(String field, T value) {
        if (value == null) {
            throw InvalidSpecException.ofField(field, "required, was null");
        }
        return value;
    }

    private static byte[] write(ObjectNode node) {
        try {
            return MAPPER.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            // A tree of strings, numbers and booleans always serializes.
            throw new IllegalStateException("cannot write OCI JSON", e);
        }
    }
}
