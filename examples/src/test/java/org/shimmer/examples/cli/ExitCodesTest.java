package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.shim.ShimException;

class ExitCodesTest {

    @Test
    void aCommandRuncCannotFindIs127() {
        // runc 1.1's words, as both shims pass them on inside the create's failure.
        assertThat(ExitCodes.of(new ShimException("create default/x: OCI runtime create failed: runc create failed:"
                + " unable to start container process: exec: \"nope\": executable file not found in $PATH")))
                .isEqualTo(127);
        assertThat(ExitCodes.of(new RuntimeException("run failed", new NotFoundException("create default/x: exec:"
                + " \"/bin/nope\": stat /bin/nope: no such file or directory")))).isEqualTo(127);
    }

    @Test
    void aCommandThatCannotBeRunIs126() {
        assertThat(ExitCodes.of(new FailedPreconditionException("create default/x: unable to start container"
                + " process: exec: \"/etc\": permission denied"))).isEqualTo(126);
        assertThat(ExitCodes.of(new ShimException("exec: \"/etc/passwd\": exec format error"))).isEqualTo(126);
    }

    @Test
    void aCliFailureKeepsItsOwnStatusAndMessagesAreOneLine() {
        assertThat(ExitCodes.of(new CliException("bad", 2))).isEqualTo(2);
        assertThat(ExitCodes.message(new ShimException("create default/x: runc said\nno (UNKNOWN)")))
                .isEqualTo("create default/x: runc said; no");
    }

    @Test
    void anyOtherFailureIsShimmersOwn125() {
        assertThat(ExitCodes.of(new NotFoundException("bundle default/x not found"))).isEqualTo(125);
        assertThat(ExitCodes.of(new IllegalStateException((String) null))).isEqualTo(125);
        assertThat(ExitCodes.of(new ShimException("no such file or directory: /state/default/x/config.json")))
                .as("not an exec").isEqualTo(125);
    }
}
