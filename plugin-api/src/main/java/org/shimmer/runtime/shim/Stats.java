package org.shimmer.runtime.shim;

/**
 * Resource usage as the shim reports it: cgroup metrics, undecoded.
 *
 * @param typeUrl the metrics type, e.g. {@code io.containerd.cgroups.v1.Metrics}
 * @param value the protobuf-encoded metrics
 */
public record Stats(String typeUrl, byte[] value) {}
