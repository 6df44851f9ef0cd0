package org.shimmer.runtime.linux.shim;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.ShimmerException;
import org.shimmer.runtime.shim.ShimException;
import reactor.core.Exceptions;

/**
 * Issue 11: the table from runc's and the kernel's words to error codes. The words are what runc 1.1.5 printed
 * for each situation (run by hand: {@code runc start} twice, {@code runc exec} into a stopped container, …); pure
 * logic, the shims' real answers are in {@code ShimContractTest}.
 */
class TaskErrorsTest {

    static Stream<Arguments> runcSays() {
        return Stream.of(
                Arguments.of("container does not exist", ErrorCode.NOT_FOUND),
                Arguments.of("exec failed: container does not exist", ErrorCode.NOT_FOUND),
                Arguments.of("process does not exist e1: not found", ErrorCode.NOT_FOUND),
                // A create's spec error names something else that does not exist: the container is not missing.
                Arguments.of("runc create failed: unable to start container process: namespace {\"time\" \"\"} "
                        + "does not exist", ErrorCode.INTERNAL),
                Arguments.of("runc create failed: unable to apply cgroup configuration: cgroup path does not exist",
                        ErrorCode.INTERNAL),
                Arguments.of("runc create failed: container with given ID already exists", ErrorCode.ALREADY_EXISTS),
                Arguments.of("cannot start an already running container", ErrorCode.FAILED_PRECONDITION),
                Arguments.of("cannot start a container that has stopped", ErrorCode.FAILED_PRECONDITION),
                Arguments.of("cannot start a container in the paused state", ErrorCode.FAILED_PRECONDITION),
                Arguments.of("exec failed: cannot exec in a stopped container", ErrorCode.FAILED_PRECONDITION),
                Arguments.of("container not running", ErrorCode.FAILED_PRECONDITION),
                Arguments.of("runc start failed: container process is already dead", ErrorCode.FAILED_PRECONDITION),
                Arguments.of("container not paused", ErrorCode.FAILED_PRECONDITION),
                Arguments.of("cannot delete container c1 that is not stopped: running",
                        ErrorCode.FAILED_PRECONDITION),
                Arguments.of("runc create failed: invalid container ID format", ErrorCode.INVALID_ARGUMENT),
                Arguments.of("runc create failed: container id cannot be empty", ErrorCode.INVALID_ARGUMENT),
                Arguments.of("mkdir /run/x: no space left on device", ErrorCode.RESOURCE_EXHAUSTED),
                Arguments.of("open /x: disk quota exceeded", ErrorCode.RESOURCE_EXHAUSTED),
                Arguments.of("pipe2: too many open files", ErrorCode.RESOURCE_EXHAUSTED),
                Arguments.of("exit status 1", ErrorCode.INTERNAL),
                Arguments.of("runc run failed: unable to start container process: exec: \"/nope\": no such file",
                        ErrorCode.INTERNAL));
    }

    static Stream<Arguments> wordsOnAFullDisk() {
        String lost = "runc create failed: unable to start container process: error during container init: unable to"
                + " store init state: ";
        return Stream.of(
                // runc's create with its state root out of blocks: its reason lost, INTERNAL until the disk is named.
                Arguments.of(lost + "%!w(<nil>)", lost + "(reason lost); no space left on device in /full/ns"),
                Arguments.of("exit status 1", "exit status 1; no space left on device in /full/ns"),
                Arguments.of("runc create failed: no space left on device",
                        "runc create failed: no space left on device; no space left on device in /full/ns"),
                // Named already, or no shortage of space: as runc said it.
                Arguments.of("mkdir /full/ns/c1: no space left on device",
                        "mkdir /full/ns/c1: no space left on device"),
                Arguments.of("pipe2: too many open files", "pipe2: too many open files"),
                Arguments.of("container does not exist", "container does not exist"),
                Arguments.of("container not running", "container not running"));
    }

    @ParameterizedTest
    @MethodSource("wordsOnAFullDisk")
    void aReasonThatDoesNotSayWhereTheDiskIsFullNamesTheFullDirectory(String why, String expected) {
        assertThat(TaskErrors.withFullFileSystem(why, () -> Optional.of(Path.of("/full/ns")))).isEqualTo(expected);
        assertThat(TaskErrors.withFullFileSystem(why, Optional::empty)).as("no disk full").isEqualTo(why);
        assertThat(TaskErrors.code(TaskErrors.withFullFileSystem(why, () -> Optional.of(Path.of("/full/ns"))), null))
                .as("typed by its words").isIn(TaskErrors.code(why, null), ErrorCode.RESOURCE_EXHAUSTED);
    }

    @ParameterizedTest
    @MethodSource("runcSays")
    void eachOfRuncsWordsHasItsCode(String why, ErrorCode expected) {
        IOException cause = new IOException("runc exited 1: " + why);

        ShimmerException typed = TaskErrors.classify("start task ns/c1: " + why, why, cause);

        assertThat(TaskErrors.code(why, cause)).isEqualTo(expected);
        assertThat(typed.code()).isEqualTo(expected);
        assertThat(typed).hasMessage("start task ns/c1: " + why).hasCause(cause);
    }

    @Test
    void eachCodeHasItsTypeAndTheRestAreShimExceptionsCarryingIt() {
        for (ErrorCode code : ErrorCode.values()) {
            ShimmerException typed = TaskErrors.typed(code, "m", new IOException("why"));
            assertThat(typed.code()).isEqualTo(code);
            assertThat(typed).hasMessage("m").hasCauseInstanceOf(IOException.class);
        }
        assertThat(TaskErrors.typed(ErrorCode.DEADLINE_EXCEEDED, "m", null)).isExactlyInstanceOf(ShimException.class);
    }

    /**
     * A refusal of the stopped runtime's scheduler is UNAVAILABLE (the container lives on for the next runtime);
     * a running scheduler whose queue is full refuses too, and that is too much work at once, not a stop.
     */
    @Test
    void aRefusalIsUnavailableOnlyWhenTheRuntimeStopped() {
        Throwable stopped = Exceptions.failWithRejected("the runtime stopped; it takes no new work");
        Throwable full = Exceptions.failWithRejected(
                "Task capacity of bounded elastic scheduler reached while scheduling 1 tasks (2/1)");

        assertThat(TaskErrors.code("scheduling", new IOException("wrapped", stopped)))
                .isEqualTo(ErrorCode.UNAVAILABLE);
        assertThat(TaskErrors.code("scheduling", full)).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED);
        assertThat(TaskErrors.rejected(full)).isFalse();
    }

    @Test
    void aKillOfAProcessThatEndedIsNotFoundAsTheRemoteShimSaysIt() {
        FailedPreconditionException notRunning = new FailedPreconditionException("runc kill failed: container not "
                + "running");

        assertThat(TaskErrors.ofKill(notRunning)).isInstanceOf(NotFoundException.class).hasCause(notRunning)
                .hasMessageContaining("process already finished");
        FailedPreconditionException paused = new FailedPreconditionException("container paused");
        assertThat(TaskErrors.ofKill(paused)).isSameAs(paused);
    }
}
