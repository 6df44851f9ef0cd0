package org.shimmer.runtime.spec;

/**
 * A Linux namespace of the container: a new one of {@link #type()}, or with a {@link #path()} the existing one
 * at that path (for example {@code /proc/<pid>/ns/net}).
 */
public record Namespace(Type type, String path) {

    /** The namespace kinds of the OCI spec. */
    public enum Type {
        PID("pid"), NETWORK("network"), IPC("ipc"), UTS("uts"), MOUNT("mount"), USER("user"), CGROUP("cgroup"),
        TIME("time");

        private final String ociName;

        Type(String ociName) {
            this.ociName = ociName;
        }

        /** The name in OCI JSON. */
        public String ociName() {
            return ociName;
        }
    }

    public Namespace {
        Checks.required("linux.namespaces.type", type);
        if (path != null) {
            Checks.absolutePath("linux.namespaces.path", path);
        }
    }

    /** A new namespace of {@code type}. */
    public static Namespace of(Type type) {
        return new Namespace(type, null);
    }

    /** Joins the existing namespace at {@code path}. */
    public static Namespace join(Type type, String path) {
        return new Namespace(type, path);
    }
}
