package org.shimmer.runtime.shim;

import java.time.Instant;

/**
 * How a process ended.
 *
 * @param pid the process id it had
 * @param status the exit status; 128 + the signal number when a signal killed it
 * @param exitedAt when it exited
 */
public record ExitStatus(int pid, int status, Instant exitedAt) {}
