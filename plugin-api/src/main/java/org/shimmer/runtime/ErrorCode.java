package org.shimmer.runtime;

/**
 * What kind of failure a {@link ShimmerException} is, for callers that branch on it rather than on its type or
 * message. The same situation gives the same code whichever shim runs the container: the remote shim's ttRPC
 * status codes and runc's errors map onto these, as containerd's {@code errdefs} does.
 *
 * <p>The names are stable: they are part of the API and will not be renamed or removed; a new kind of failure
 * may add a constant, so a {@code switch} over them keeps a default branch.
 */
public enum ErrorCode {

    /**
     * Something the caller named does not exist: a bundle, a task, an exec id, a recorded shim. Retrying the same
     * call will fail the same way; create the target first, or treat it as already gone.
     */
    NOT_FOUND,

    /**
     * Something to be made exclusively exists already (a bundle, a task, an exec id); the existing one was left
     * untouched. Pick another id, or use the existing one.
     */
    ALREADY_EXISTS,

    /**
     * The call is valid but not in the target's current state: starting a process twice, exec into or pausing a
     * stopped container, deleting a running one. Nothing was changed; bring the target into the needed state
     * first (wait for its exit, kill it, resume it), then call again.
     */
    FAILED_PRECONDITION,

    /**
     * The caller's input is not acceptable whatever the state: an identifier breaking the rules, a spec that is
     * not valid. Nothing was made; fix the named value.
     */
    INVALID_ARGUMENT,

    /**
     * What the call needs cannot be reached: the shim is gone, detached or closed its connection, or the runtime
     * is stopping. The target itself may be fine; reconnect, or retry later.
     */
    UNAVAILABLE,

    /**
     * No answer came within the call's deadline: the shim or runc is stalled or overloaded. The operation may or
     * may not have happened; look at the target's state before retrying.
     */
    DEADLINE_EXCEEDED,

    /**
     * A resource of the machine ran out: no space left on a device, a quota, descriptors, processes. What the
     * failed call made was removed; free the resource, then retry.
     */
    RESOURCE_EXHAUSTED,

    /**
     * Anything else: runc or the shim failed for a reason none of the other codes names (a spec runc refuses,
     * an unsupported operation, a bug). The message and the cause say what happened; retrying rarely helps.
     */
    INTERNAL
}
