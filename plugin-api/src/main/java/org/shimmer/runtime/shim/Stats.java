package org.shimmer.runtime.shim;

/**
 * Resource usage as the shim reported it, undecoded; {@link ContainerStats} is its typed view.
 *
 * @param typeUrl the format: {@code io.containerd.cgroups.v1.Metrics} or {@code io.containerd.cgroups.v2.Metrics}
 *     (protobuf, remote shim), or {@code application/vnd.runc.stats+json} (runc's stats event, local shim)
 * @param value the encoded metrics
 */
public record Stats(String typeUrl, byte[] value) {}
