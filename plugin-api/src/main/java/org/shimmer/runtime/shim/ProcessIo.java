package org.shimmer.runtime.shim;

import reactor.core.publisher.Flux;

/**
 * The output of a process started with {@link Stdio#streams}: each a single-subscriber {@code Flux} that completes
 * when the process and everything holding its streams have closed them. Empty for other kinds of stdio.
 *
 * @param pid the process id on the host
 * @param stdout the process's standard output, chunk by chunk
 * @param stderr the process's standard error, chunk by chunk
 */
public record ProcessIo(int pid, Flux<byte[]> stdout, Flux<byte[]> stderr) {}
