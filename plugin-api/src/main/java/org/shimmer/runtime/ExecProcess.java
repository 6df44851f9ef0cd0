package org.shimmer.runtime;

import org.shimmer.runtime.shim.ExitStatus;
import org.shimmer.runtime.shim.TerminalSize;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * A process started in a running container by {@link Container#exec}. Its output streams follow the rules of the
 * container's ({@link Container#stdout()}): read continuously into a bounded buffer, one subscriber at a time.
 */
public interface ExecProcess {

    /** The exec id. */
    String id();

    /** The process's host pid. */
    int pid();

    Flux<byte[]> stdout();

    Flux<byte[]> stderr();

    /** Bytes of stdout dropped so far because nobody read them and the buffer was full. */
    long droppedStdoutBytes();

    /** Bytes of stderr dropped so far because nobody read them and the buffer was full. */
    long droppedStderrBytes();

    /**
     * The process's exit, once it exited and the shim was asked to delete it; every subscriber gets it. The exec id
     * is free again then unless that delete failed (it is still freed by the container's release).
     */
    Mono<ExitStatus> exit();

    /** Sends {@code signal} to the process. */
    Mono<Void> kill(int signal);

    /** Changes the size of the process's terminal; see {@link org.shimmer.runtime.shim.ShimClient#resize}. */
    Mono<Void> resize(TerminalSize size);
}
