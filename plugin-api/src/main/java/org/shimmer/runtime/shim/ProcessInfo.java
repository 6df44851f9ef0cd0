package org.shimmer.runtime.shim;

/**
 * A process inside a container.
 *
 * @param pid the process id on the host
 * @param execId the exec it belongs to, or empty for the init process and its children
 */
public record ProcessInfo(int pid, String execId) {}
