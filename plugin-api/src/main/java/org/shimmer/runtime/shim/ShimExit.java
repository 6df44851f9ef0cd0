package org.shimmer.runtime.shim;

/**
 * What an exit handler learns when a shim died (its connection closed without a shutdown).
 *
 * @param namespace the bundle's namespace
 * @param id the bundle's id
 * @param shimPid the shim process that died, 0 if unknown
 */
public record ShimExit(String namespace, String id, int shimPid) {}
